//! The char-level tokenizer and the tiny-shakespeare loader: vocabulary, round trips,
//! typed errors, split sizes, batch contents and determinism of seeded sampling.

use tessera_compiler::graph::DType;
use tessera_models::data::{DataError, Dataset, Split, TINY_SHAKESPEARE};
use tessera_models::rng::Rng;
use tessera_models::tokenizer::{CharTokenizer, TokenizerError};

#[test]
fn vocabulary_is_sorted_distinct_chars() {
    let t = CharTokenizer::from_text("hello, world").unwrap();
    let chars: String = t.chars().iter().collect();
    assert_eq!(chars, " ,dehlorw");
    assert_eq!(t.vocab_size(), 9);
    assert_eq!(t.encode("hello").unwrap(), vec![4, 3, 5, 5, 6]);
}

#[test]
fn tokenizer_round_trip_and_errors() {
    let t = CharTokenizer::from_text("abcé\n").unwrap();
    let ids = t.encode("cab\né").unwrap();
    assert_eq!(t.decode(&ids).unwrap(), "cab\né");
    assert_eq!(
        t.encode("abz"),
        Err(TokenizerError::UnknownChar {
            ch: 'z',
            position: 2
        })
    );
    assert_eq!(
        t.decode(&[0, 5]),
        Err(TokenizerError::UnknownId {
            id: 5,
            position: 1,
            vocab_size: 5
        })
    );
    assert!(matches!(
        t.decode(&[-1]),
        Err(TokenizerError::UnknownId { id: -1, .. })
    ));
    assert_eq!(CharTokenizer::from_text(""), Err(TokenizerError::EmptyText));
    // Serde: the vocabulary list.
    let json = serde_json::to_string(&t).unwrap();
    assert_eq!(json, r#"["\n","a","b","c","é"]"#);
    let back: CharTokenizer = serde_json::from_str(&json).unwrap();
    assert_eq!(back.encode("cab\né").unwrap(), ids);
    assert!(serde_json::from_str::<CharTokenizer>("[]").is_err());
}

#[test]
fn tiny_shakespeare_vocab_and_split() {
    // Known figures of the corpus (as reported by nanoGPT's shakespeare_char prepare.py):
    // 1,115,394 characters, 65 distinct, 1,003,854 train and 111,540 val tokens.
    assert_eq!(TINY_SHAKESPEARE.chars().count(), 1_115_394);
    let data = Dataset::tiny_shakespeare().unwrap();
    let tok = data.tokenizer();
    assert_eq!(tok.vocab_size(), 65);
    assert_eq!(tok.chars()[0], '\n');
    assert_eq!(tok.chars()[1], ' ');
    assert_eq!(data.ids(Split::Train).len(), 1_003_854);
    assert_eq!(data.ids(Split::Val).len(), 111_540);
    // The split is contiguous and the whole text round-trips.
    let mut all = data.ids(Split::Train).to_vec();
    all.extend_from_slice(data.ids(Split::Val));
    assert_eq!(tok.decode(&all).unwrap(), TINY_SHAKESPEARE);
    assert!(tok.decode(&data.ids(Split::Train)[..14]).unwrap() == "First Citizen:");
}

#[test]
fn batches_are_shifted_windows() {
    let data = Dataset::tiny_shakespeare().unwrap();
    let mut rng = Rng::new(5);
    let b = data.batch(Split::Val, 3, 12, &mut rng).unwrap();
    assert_eq!(b.tokens.shape, vec![3, 12]);
    assert_eq!(b.targets.shape, vec![3, 12]);
    assert_eq!(b.tokens.dtype, DType::I32);
    assert_eq!(b.targets.dtype, DType::I32);
    let val = data.ids(Split::Val);
    for (row, &o) in b.offsets.iter().enumerate() {
        assert!(o + 13 <= val.len());
        for t in 0..12 {
            assert_eq!(b.tokens.data[row * 12 + t], f64::from(val[o + t]));
            assert_eq!(b.targets.data[row * 12 + t], f64::from(val[o + t + 1]));
        }
    }
}

#[test]
fn batches_are_deterministic_and_resumable() {
    let data = Dataset::tiny_shakespeare().unwrap();
    let mut a = Rng::new(42);
    let mut b = Rng::new(42);
    let mut c = Rng::new(43);
    let a1 = data.batch(Split::Train, 4, 32, &mut a).unwrap();
    let b1 = data.batch(Split::Train, 4, 32, &mut b).unwrap();
    let c1 = data.batch(Split::Train, 4, 32, &mut c).unwrap();
    assert_eq!(a1, b1);
    assert_ne!(a1.offsets, c1.offsets);
    // Resuming from the saved state gives the batch an uninterrupted run draws next.
    let saved = a.state();
    let a2 = data.batch(Split::Train, 4, 32, &mut a).unwrap();
    let mut resumed = Rng::from_state(saved);
    assert_eq!(data.batch(Split::Train, 4, 32, &mut resumed).unwrap(), a2);
    assert_ne!(a1, a2);
}

#[test]
fn offsets_cover_the_split() {
    // Every start offset of a 10-id split with T = 3 (offsets 0..=6) appears, and none
    // outside: uniform sampling over the whole split, edges included.
    let data = Dataset::from_text("abcdefghijklmnopqrs", 0.5).unwrap();
    assert_eq!(data.ids(Split::Train).len(), 9);
    assert_eq!(data.ids(Split::Val).len(), 10);
    let mut rng = Rng::new(0);
    let mut seen = [0usize; 7];
    for _ in 0..200 {
        let b = data.batch(Split::Val, 4, 3, &mut rng).unwrap();
        for o in b.offsets {
            seen[o] += 1;
        }
    }
    // 800 draws over 7 offsets: each ~114 (binomial sd ~10); all well above 50.
    assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
}

#[test]
fn data_errors() {
    let data = Dataset::from_text("abcdefghij", 0.9).unwrap();
    let mut rng = Rng::new(1);
    assert_eq!(
        data.batch(Split::Val, 1, 1, &mut rng),
        Err(DataError::SplitTooShort {
            split: Split::Val,
            len: 1,
            seq: 1
        })
    );
    assert!(matches!(
        data.batch(Split::Train, 0, 2, &mut rng),
        Err(DataError::EmptyBatch { .. })
    ));
    assert!(matches!(
        data.batch(Split::Train, 1, 9, &mut rng),
        Err(DataError::SplitTooShort { .. })
    ));
    assert!(data.batch(Split::Train, 1, 8, &mut rng).is_ok());
    assert!(matches!(
        data.batch_at(Split::Train, 4, &[6]),
        Err(DataError::SplitTooShort { .. })
    ));
    assert!(matches!(
        Dataset::from_text("abc", 1.0),
        Err(DataError::BadFraction(_))
    ));
    assert!(matches!(
        Dataset::from_text("", 0.9),
        Err(DataError::Tokenizer(TokenizerError::EmptyText))
    ));
    let msg = data
        .batch(Split::Val, 1, 1, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("val split has 1 tokens"), "{msg}");
}

#[test]
fn rng_normal_moments() {
    // 20,000 Box-Muller samples: mean within 5 / sqrt(n) = 0.035, variance within
    // 5 sqrt(2 / n) = 0.05 of 1.
    let mut r = Rng::new(3);
    let n = 20_000;
    let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
    assert!(mean.abs() < 0.035, "{mean}");
    assert!((var - 1.0).abs() < 0.05, "{var}");
    assert_eq!(Rng::new(0).below(0), 0);
}
