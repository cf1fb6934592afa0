//! Checkpoints (safetensors round trip, atomic save under injected failures, every
//! mismatch reported on a checked load) and the loss-curve PNG.

use std::collections::BTreeMap;
use std::io::Write;
use tessera::compiler::interp::Tensor;
use tessera::compiler::{DType, TensorType};
use tessera::train::checkpoint::{atomic_write, Checkpoint, CheckpointError, Mismatch};
use tessera::train::plot::{plot_loss_curve, write_loss_csv, Series, SERIES_COLORS};

/// Values exactly representable in every dtype used (so the round trip is exact).
fn sample() -> Checkpoint {
    let mut tensors = BTreeMap::new();
    tensors.insert(
        "wte.weight".to_string(),
        Tensor::from_vec(
            &[2, 3],
            DType::F32,
            vec![0.5, -1.25, 3.0, 0.0, 1e-3f32 as f64, -7.0],
        )
        .unwrap(),
    );
    tensors.insert(
        "adamw.m/wte.weight".to_string(),
        Tensor::from_vec(&[2, 3], DType::F32, vec![0.25; 6]).unwrap(),
    );
    tensors.insert(
        "half".to_string(),
        Tensor::from_vec(&[4], DType::F16, vec![1.0, -2.0, 0.5, 65504.0]).unwrap(),
    );
    tensors.insert(
        "ids".to_string(),
        Tensor::from_vec(&[3], DType::I32, vec![-3.0, 0.0, 2147483647.0]).unwrap(),
    );
    Checkpoint {
        tensors,
        step: 123,
        rng_state: 0xDEAD_BEEF_1234_5678,
        config: serde_json::json!({"n_layer": 2, "n_embd": 64}),
        extra: BTreeMap::from([("note".to_string(), "hello".to_string())]),
    }
}

#[test]
fn round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let ck = sample();
    ck.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(back, ck);
    assert_eq!(back.params().count(), 3, "moments are not parameters");
    // The checked load accepts exactly the saved specs.
    let specs: Vec<(String, TensorType)> = ck
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.ty()))
        .collect();
    assert_eq!(Checkpoint::load_checked(&path, &specs).unwrap(), ck);
}

fn dir_entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn failed_save_leaves_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let first = sample();
    first.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();

    // A crash in the middle of writing the new file: half the bytes, then an error.
    let mut second = sample();
    second.step = 999;
    let bytes = second.to_bytes().unwrap();
    let r = atomic_write(&path, |f| {
        f.write_all(&bytes[..bytes.len() / 2])?;
        Err(std::io::Error::other("injected failure"))
    });
    match r {
        Err(CheckpointError::Io { source, .. }) => assert!(source.to_string().contains("injected")),
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the previous checkpoint changed"
    );
    assert_eq!(Checkpoint::load(&path).unwrap(), first);
    assert_eq!(
        dir_entries(dir.path()),
        vec!["ck.safetensors"],
        "temporary file left behind"
    );

    // A tensor that cannot be stored fails before anything is written.
    second.tensors.insert(
        "mask".into(),
        Tensor::from_vec(&[1], DType::Bool, vec![1.0]).unwrap(),
    );
    assert!(matches!(
        second.save(&path),
        Err(CheckpointError::UnsupportedDType { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // A successful save replaces it.
    second.tensors.remove("mask");
    second.save(&path).unwrap();
    assert_eq!(Checkpoint::load(&path).unwrap().step, 999);
    assert_eq!(dir_entries(dir.path()), vec!["ck.safetensors"]);
}

#[test]
fn checked_load_reports_every_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    sample().save(&path).unwrap();
    let expected = vec![
        // Shape differs.
        (
            "wte.weight".to_string(),
            TensorType::new(vec![3, 2], DType::F32),
        ),
        // Dtype differs.
        ("half".to_string(), TensorType::new(vec![4], DType::F32)),
        // Matches.
        ("ids".to_string(), TensorType::new(vec![3], DType::I32)),
        // Missing from the file.
        (
            "wpe.weight".to_string(),
            TensorType::new(vec![8, 3], DType::F32),
        ),
        // `adamw.m/wte.weight` is in the file but not expected.
    ];
    let err = Checkpoint::load_checked(&path, &expected).unwrap_err();
    let CheckpointError::Mismatch { problems, .. } = &err else {
        panic!("expected Mismatch, got {err:?}");
    };
    assert_eq!(
        problems,
        &vec![
            Mismatch::Unexpected {
                name: "adamw.m/wte.weight".into(),
                shape: vec![2, 3],
                dtype: "f32".into()
            },
            Mismatch::DType {
                name: "half".into(),
                expected: DType::F32,
                got: "f16".into()
            },
            Mismatch::Missing {
                name: "wpe.weight".into(),
                expected: TensorType::new(vec![8, 3], DType::F32)
            },
            Mismatch::Shape {
                name: "wte.weight".into(),
                expected: vec![3, 2],
                got: vec![2, 3]
            },
        ]
    );
    let msg = err.to_string();
    for name in ["adamw.m/wte.weight", "half", "wpe.weight", "wte.weight"] {
        assert!(msg.contains(name), "message lacks `{name}`: {msg}");
    }
    assert!(msg.contains("4 problems"), "{msg}");
}

#[test]
fn garbage_is_a_format_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    std::fs::write(&path, b"not a safetensors file").unwrap();
    assert!(matches!(
        Checkpoint::load(&path),
        Err(CheckpointError::Format { .. })
    ));
    assert!(matches!(
        Checkpoint::load(dir.path().join("absent")),
        Err(CheckpointError::Io { .. })
    ));
}

#[test]
fn loss_curve_png_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.png");
    let train: Vec<(f64, f64)> = (1..=50)
        .map(|s| (s as f64, 4.2 * (-(s as f64) / 20.0).exp() + 1.0))
        .collect();
    let val: Vec<(f64, f64)> = (1..=5)
        .map(|k| ((10 * k) as f64, 4.0 * (-(k as f64) / 2.5).exp() + 1.2))
        .collect();
    let series = vec![
        Series {
            name: "train".into(),
            points: train,
        },
        Series {
            name: "val".into(),
            points: val,
        },
    ];
    let (w, h) = (640u32, 400u32);
    plot_loss_curve(&path, &series, w, h).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    // A compressed mostly-white picture: well over the PNG overhead, well under raw RGB.
    assert!(
        size > 1000 && size < u64::from(w * h * 3),
        "PNG of {size} bytes"
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (w, h));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let px = &buf[..info.buffer_size()];
    // Both series' colours are drawn.
    for (r, g, b) in &SERIES_COLORS[..2] {
        let n = px.chunks_exact(3).filter(|p| p == &[*r, *g, *b]).count();
        assert!(n > 100, "colour ({r}, {g}, {b}) drawn on {n} pixels");
    }
    // Text (title, axis labels, tick numbers, legend) is drawn with the embedded font:
    // dark pixels (all channels < 100; the series colours and the grid have none) left
    // of the plot area, where the y tick numbers and the y label are.
    let dark = (0..h)
        .flat_map(|y| (0..w / 8).map(move |x| 3 * (y * w + x) as usize))
        .filter(|&i| px[i..i + 3].iter().all(|&c| c < 100))
        .count();
    assert!(dark > 150, "{dark} dark pixels left of the plot");
    let csv = dir.path().join("loss.csv");
    write_loss_csv(&csv, &series).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 1 + 50 + 5);
    // No points, or non-finite ones, are typed errors.
    assert!(plot_loss_curve(&path, &[], w, h).is_err());
    let nan = vec![Series {
        name: "x".into(),
        points: vec![(1.0, f64::NAN)],
    }];
    assert!(plot_loss_curve(&path, &nan, w, h).is_err());
}
