//! The bundled tiny-shakespeare corpus and a loader of `(tokens, targets)` batches.
//!
//! The text is embedded in the binary (`data/tinyshakespeare.txt` at the workspace root,
//! 1,115,394 characters). [`Dataset`] tokenizes it with a [`CharTokenizer`] built from the
//! whole text and splits the ids 90/10: the first `floor(0.9 n)` ids train, the rest
//! validate (a contiguous split, as in nanoGPT, so no validation sequence overlaps the
//! training text). [`Dataset::batch`] draws `B` windows of `T + 1` consecutive ids at
//! uniform random offsets from a seeded [`Rng`]: `tokens` are the first `T`, `targets` the
//! last `T` (the next character of each position).

use crate::rng::Rng;
use crate::tokenizer::{CharTokenizer, TokenizerError};
use tessera_compiler::graph::DType;
use tessera_compiler::interp::Tensor;

/// The tiny-shakespeare text (Karpathy's char-rnn corpus).
pub const TINY_SHAKESPEARE: &str = include_str!("../../data/tinyshakespeare.txt");

/// Fraction of the ids that train (the rest validate).
pub const TRAIN_FRACTION: f64 = 0.9;

/// Errors of dataset construction and batching.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    /// Tokenizing the text failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// A split is too short for the requested sequence length.
    #[error("the {split} split has {len} tokens; a sequence of {seq} needs at least {}", seq + 1)]
    SplitTooShort {
        /// The split.
        split: Split,
        /// Its number of ids.
        len: usize,
        /// The requested sequence length.
        seq: usize,
    },
    /// A batch of zero sequences or of zero-length sequences was requested.
    #[error("batch size and sequence length must be at least 1 (got {batch} x {seq})")]
    EmptyBatch {
        /// Requested batch size.
        batch: usize,
        /// Requested sequence length.
        seq: usize,
    },
    /// The train fraction is not in `(0, 1)`.
    #[error("train fraction {0} must lie strictly between 0 and 1")]
    BadFraction(f64),
}

/// Which part of the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The first 90 %.
    Train,
    /// The last 10 %.
    Val,
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Val => "val",
        })
    }
}

/// One batch: `tokens` and `targets`, both `[B, T]` `i32`, with
/// `targets[b, t] = tokens[b, t + 1]` inside the window (and the next id after it for
/// the last position).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Input ids `[B, T]`.
    pub tokens: Tensor,
    /// Next-token ids `[B, T]`.
    pub targets: Tensor,
    /// The start offset of each window in its split.
    pub offsets: Vec<usize>,
}

/// A tokenized text split into train and validation ids.
#[derive(Clone, Debug)]
pub struct Dataset {
    tokenizer: CharTokenizer,
    train: Vec<i32>,
    val: Vec<i32>,
}

impl Dataset {
    /// Tiny-shakespeare with the 90/10 split.
    pub fn tiny_shakespeare() -> Result<Dataset, DataError> {
        Dataset::from_text(TINY_SHAKESPEARE, TRAIN_FRACTION)
    }

    /// Any text: the vocabulary is built from the whole text, the first
    /// `floor(train_fraction * n)` ids train and the rest validate.
    pub fn from_text(text: &str, train_fraction: f64) -> Result<Dataset, DataError> {
        if !(train_fraction > 0.0 && train_fraction < 1.0) {
            return Err(DataError::BadFraction(train_fraction));
        }
        let tokenizer = CharTokenizer::from_text(text)?;
        let mut train = tokenizer.encode(text)?;
        let n_train = (train_fraction * train.len() as f64).floor() as usize;
        let val = train.split_off(n_train);
        Ok(Dataset {
            tokenizer,
            train,
            val,
        })
    }

    /// The tokenizer (vocabulary of the whole text).
    pub fn tokenizer(&self) -> &CharTokenizer {
        &self.tokenizer
    }

    /// The ids of a split.
    pub fn ids(&self, split: Split) -> &[i32] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }

    /// `batch` random windows of `seq + 1` ids from `split`, offsets drawn uniformly from
    /// `0..=len - seq - 1` by `rng` (one draw per sequence, in order: the same rng state
    /// gives the same batch).
    pub fn batch(
        &self,
        split: Split,
        batch: usize,
        seq: usize,
        rng: &mut Rng,
    ) -> Result<Batch, DataError> {
        if batch == 0 || seq == 0 {
            return Err(DataError::EmptyBatch { batch, seq });
        }
        let ids = self.ids(split);
        if ids.len() < seq + 1 {
            return Err(DataError::SplitTooShort {
                split,
                len: ids.len(),
                seq,
            });
        }
        let starts = (ids.len() - seq) as u64;
        let offsets: Vec<usize> = (0..batch).map(|_| rng.below(starts) as usize).collect();
        self.batch_at(split, seq, &offsets)
    }

    /// The batch of windows starting at the given offsets of `split` (for sequential
    /// evaluation sweeps).
    pub fn batch_at(
        &self,
        split: Split,
        seq: usize,
        offsets: &[usize],
    ) -> Result<Batch, DataError> {
        if offsets.is_empty() || seq == 0 {
            return Err(DataError::EmptyBatch {
                batch: offsets.len(),
                seq,
            });
        }
        let ids = self.ids(split);
        let mut tokens = Vec::with_capacity(offsets.len() * seq);
        let mut targets = Vec::with_capacity(offsets.len() * seq);
        for &o in offsets {
            let Some(w) = o.checked_add(seq + 1).and_then(|end| ids.get(o..end)) else {
                return Err(DataError::SplitTooShort {
                    split,
                    len: ids.len().saturating_sub(o),
                    seq,
                });
            };
            tokens.extend(w[..seq].iter().map(|&v| f64::from(v)));
            targets.extend(w[1..].iter().map(|&v| f64::from(v)));
        }
        let shape = [offsets.len(), seq];
        Ok(Batch {
            tokens: Tensor {
                shape: shape.to_vec(),
                dtype: DType::I32,
                data: tokens,
            },
            targets: Tensor {
                shape: shape.to_vec(),
                dtype: DType::I32,
                data: targets,
            },
            offsets: offsets.to_vec(),
        })
    }
}
