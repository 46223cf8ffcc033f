//! Decompression of v7 sections and per-CPU chunks: zstd (the `zstd` crate) and zlib
//! (`flate2`), the two algorithms trace-cmd writes.

use virtflow_trace::error::DatError;

/// A compression algorithm named in the v7 file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Zstd,
    Zlib,
}

impl Codec {
    /// `None` for "none"; an error for an algorithm this reader does not know.
    pub fn from_name(name: &str) -> Result<Option<Codec>, DatError> {
        match name {
            "none" | "" => Ok(None),
            "zstd" => Ok(Some(Codec::Zstd)),
            "zlib" => Ok(Some(Codec::Zlib)),
            other => Err(DatError::UnknownCompression {
                name: other.to_string(),
            }),
        }
    }
}

/// A reusable decompressor (one per stream, so its buffers are allocated once).
pub struct Decompressor {
    codec: Codec,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
    zlib: Option<flate2::Decompress>,
}

impl Decompressor {
    pub fn new(codec: Codec) -> Self {
        Decompressor {
            codec,
            zstd: None,
            zlib: None,
        }
    }

    /// Decompresses `input` into `out` (cleared first), which must come to exactly `expected`
    /// bytes.
    pub fn decompress(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        expected: usize,
    ) -> Result<(), DatError> {
        let failed = |codec, e: &dyn std::fmt::Display| DatError::Decompression {
            codec,
            message: e.to_string(),
        };
        out.clear();
        out.reserve(expected);
        match self.codec {
            Codec::Zstd => {
                if self.zstd.is_none() {
                    self.zstd =
                        Some(zstd::bulk::Decompressor::new().map_err(|e| failed("zstd", &e))?);
                }
                let d = self.zstd.as_mut().expect("just created");
                d.decompress_to_buffer(input, out)
                    .map_err(|e| failed("zstd", &e))?;
            }
            Codec::Zlib => {
                let d = self
                    .zlib
                    .get_or_insert_with(|| flate2::Decompress::new(true));
                d.reset(true);
                let status = d
                    .decompress_vec(input, out, flate2::FlushDecompress::Finish)
                    .map_err(|e| failed("zlib", &e))?;
                if status != flate2::Status::StreamEnd {
                    return Err(failed("zlib", &"incomplete stream"));
                }
            }
        }
        if out.len() != expected {
            return Err(DatError::DecompressedSize {
                expected: expected as u64,
                found: out.len() as u64,
            });
        }
        Ok(())
    }
}

/// Upper bound on one decompressed section or chunk, so that a corrupted size field cannot
/// make the reader allocate without bound.
pub const MAX_UNCOMPRESSED: usize = 1 << 30;
