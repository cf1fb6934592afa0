//! A character-level tokenizer: the vocabulary is the sorted set of distinct characters
//! (Unicode scalar values) of a training text; id `i` is the `i`-th smallest character.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// Errors of tokenizer construction, encoding and decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizerError {
    /// The text a vocabulary was to be built from has no characters.
    #[error("cannot build a vocabulary from an empty text")]
    EmptyText,
    /// A character to encode is not in the vocabulary.
    #[error("character {ch:?} at position {position} is not in the vocabulary")]
    UnknownChar {
        /// The character.
        ch: char,
        /// Its index among the characters of the encoded text.
        position: usize,
    },
    /// An id to decode is outside `0..vocab_size`.
    #[error("token id {id} at position {position} is outside 0..{vocab_size}")]
    UnknownId {
        /// The id.
        id: i64,
        /// Its index in the decoded sequence.
        position: usize,
        /// Vocabulary size.
        vocab_size: usize,
    },
}

/// Char-level tokenizer (serialisable: its vocabulary is the list of characters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<char>", into = "Vec<char>")]
pub struct CharTokenizer {
    chars: Vec<char>,
    #[serde(skip)]
    index: HashMap<char, i32>,
}

impl TryFrom<Vec<char>> for CharTokenizer {
    type Error = TokenizerError;
    fn try_from(chars: Vec<char>) -> Result<Self, Self::Error> {
        let set: BTreeSet<char> = chars.into_iter().collect();
        CharTokenizer::from_set(set)
    }
}

impl From<CharTokenizer> for Vec<char> {
    fn from(t: CharTokenizer) -> Vec<char> {
        t.chars
    }
}

impl CharTokenizer {
    /// The vocabulary of `text`: its distinct characters, sorted.
    pub fn from_text(text: &str) -> Result<CharTokenizer, TokenizerError> {
        CharTokenizer::from_set(text.chars().collect())
    }

    fn from_set(set: BTreeSet<char>) -> Result<CharTokenizer, TokenizerError> {
        if set.is_empty() {
            return Err(TokenizerError::EmptyText);
        }
        let chars: Vec<char> = set.into_iter().collect();
        let index = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as i32))
            .collect();
        Ok(CharTokenizer { chars, index })
    }

    /// Number of distinct tokens.
    pub fn vocab_size(&self) -> usize {
        self.chars.len()
    }

    /// The vocabulary, in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The ids of the characters of `text`.
    pub fn encode(&self, text: &str) -> Result<Vec<i32>, TokenizerError> {
        text.chars()
            .enumerate()
            .map(|(position, ch)| {
                self.index
                    .get(&ch)
                    .copied()
                    .ok_or(TokenizerError::UnknownChar { ch, position })
            })
            .collect()
    }

    /// The text of a sequence of ids.
    pub fn decode(&self, ids: &[i32]) -> Result<String, TokenizerError> {
        ids.iter()
            .enumerate()
            .map(|(position, &id)| {
                usize::try_from(id)
                    .ok()
                    .and_then(|i| self.chars.get(i))
                    .copied()
                    .ok_or(TokenizerError::UnknownId {
                        id: i64::from(id),
                        position,
                        vocab_size: self.chars.len(),
                    })
            })
            .collect()
    }
}
