//! The snapshot format's encoder and decoder (described in the parent module).
//!
//! The encoder fills buffers of about [`BUFFER`] bytes that the caller sends on as they fill;
//! the decoder takes input in pieces of any size (a frame may straddle any number of them)
//! and hands out one frame at a time. Neither panics on any input: every malformation is a
//! [`StoreError::Snapshot`].

use aws_lc_rs::digest::{Context, SHA256};
use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::tables::{self, Column, Table, Type};
use super::{DumpPiece, PlannedSection, SectionInfo, SnapshotStream, SnapshotSummary};
use crate::{Result, StoreError};

mod codec;
mod decoder;
mod digest;
mod encoder;

use digest::SectionDigest;

use self::codec::*;
pub(crate) use self::codec::{Value, decode_row, uuid_value};
pub(crate) use self::decoder::{Decoder, Item};
pub(crate) use self::encoder::Encoder;

/// The first bytes of every dump.
pub(crate) const MAGIC: &[u8; 8] = b"WARDSNAP";
/// The format version this code writes.
pub(crate) const VERSION: u8 = 2;
/// Version 1: one digest over the whole dump, no sections. Still read (older backups).
const VERSION_1: u8 = 1;
/// The largest frame accepted: far above any row Ward writes (a record's ciphertext is
/// bounded by the API's body limit), low enough that a corrupt length cannot exhaust memory.
pub const MAX_FRAME: usize = 64 << 20;
/// The size of the buffers the encoder hands out.
pub const BUFFER: usize = 1 << 20;

const HEADER_LEN: usize = MAGIC.len() + 2;
const TABLE: u8 = b'T';
const ROW: u8 = b'R';
const END: u8 = b'E';
const TRAILER: u8 = b'Z';
const SECTION: u8 = b'S';
const DIGEST_LEN: usize = 32;

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Snapshot(msg.into())
}

#[cfg(test)]
mod tests;
