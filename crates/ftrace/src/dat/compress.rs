//! Decompression of v7 sections and per-CPU chunks: zstd (the `zstd` crate) and zlib
//! (`flate2`), the two algorithms trace-cmd writes.

/// A compression algorithm named in the v7 file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Zstd,
    Zlib,
}

impl Codec {
    /// `None` for "none"; an error for an algorithm this reader does not know.
    pub fn from_name(name: &str) -> Result<Option<Codec>, String> {
        match name {
            "none" | "" => Ok(None),
            "zstd" => Ok(Some(Codec::Zstd)),
            "zlib" => Ok(Some(Codec::Zlib)),
            other => Err(format!("unsupported compression algorithm {other:?}")),
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
    ) -> Result<(), String> {
        out.clear();
        out.reserve(expected);
        match self.codec {
            Codec::Zstd => {
                if self.zstd.is_none() {
                    self.zstd = Some(
                        zstd::bulk::Decompressor::new()
                            .map_err(|e| format!("zstd initialisation: {e}"))?,
                    );
                }
                let d = self.zstd.as_mut().expect("just created");
                d.decompress_to_buffer(input, out)
                    .map_err(|e| format!("zstd: {e}"))?;
            }
            Codec::Zlib => {
                let d = self
                    .zlib
                    .get_or_insert_with(|| flate2::Decompress::new(true));
                d.reset(true);
                let status = d
                    .decompress_vec(input, out, flate2::FlushDecompress::Finish)
                    .map_err(|e| format!("zlib: {e}"))?;
                if status != flate2::Status::StreamEnd {
                    return Err("zlib: incomplete stream".into());
                }
            }
        }
        if out.len() != expected {
            return Err(format!(
                "decompressed to {} bytes, {} expected",
                out.len(),
                expected
            ));
        }
        Ok(())
    }
}

/// Upper bound on one decompressed section or chunk, so that a corrupted size field cannot
/// make the reader allocate without bound.
pub const MAX_UNCOMPRESSED: usize = 1 << 30;
