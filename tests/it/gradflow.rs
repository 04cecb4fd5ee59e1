//! Gradient flow: golden values from PyTorch (measuring never changes training:
//! tests/determinism.rs).
use serde_json::Value;
use sparselab::data::Split;
use sparselab::model::{MlpConfig, Model};
use sparselab::train::measure_grad_flow;
use tch::{Device, Tensor};

fn matrix(v: &Value) -> Tensor {
    let rows: Vec<Vec<f32>> = serde_json::from_value(v.clone()).unwrap();
    let (r, c) = (rows.len() as i64, rows[0].len() as i64);
    Tensor::from_slice(&rows.concat()).view([r, c])
}

/// tests/data/gradflow/gen_gradflow.py computes the measures in PyTorch with the
/// mask applied in the forward pass; we hold masked weights at zero instead.
#[test]
fn egf_and_gradient_norms_match_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gradflow/gradflow.json");
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in golden["cases"].as_array().unwrap() {
        let sizes: Vec<i64> = serde_json::from_value(case["sizes"].clone()).unwrap();
        let cfg = MlpConfig { bias: false, batch_norm: case["batch_norm"].as_bool().unwrap(), ..MlpConfig::new(sizes[0], sizes[3], 2, sizes[1]) };
        let net = cfg.init(Device::Cpu).unwrap();
        let vars = net.var_store().variables();
        tch::no_grad(|| {
            for l in 0..3 {
                vars[&format!("fc{}.weight", l + 1)].shallow_clone().copy_(&matrix(&case["weights"][l]));
                vars[&format!("fc{}.mask", l + 1)].shallow_clone().copy_(&matrix(&case["masks"][l]));
            }
        });
        let y: Vec<i64> = serde_json::from_value(case["y"].clone()).unwrap();
        let split = Split { x: matrix(&case["x"]), y: Tensor::from_slice(&y) };
        let p = measure_grad_flow(&net, &split, 0).unwrap();
        let name = case["name"].as_str().unwrap();
        let close = |got: f64, key: &str, want: &Value| {
            let want = want.as_f64().unwrap();
            assert!((got - want).abs() <= 1e-5 * want.abs().max(1e-3), "{name} {key}: {got} vs PyTorch {want}");
        };
        close(p.egf1, "egf1", &case["egf1"]);
        close(p.egf2, "egf2", &case["egf2"]);
        close(p.gnorm1, "gnorm1", &case["gnorm1"]);
        close(p.gnorm2, "gnorm2", &case["gnorm2"]);
        for (l, want) in p.layers.iter().zip(case["layers"].as_array().unwrap()) {
            close(l.masked_l2, "masked_l2", &want["masked_l2"]);
            close(l.l1, "l1", &want["l1"]);
        }
        // Masked positions carry gradient, so the unmasked norm is strictly larger.
        assert!(p.gnorm1 > p.egf1 * 3.0 - 1e-9);
    }
}
