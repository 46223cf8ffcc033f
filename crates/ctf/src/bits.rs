//! Bit-level integer reading, any size from 1 to 64 bits, any alignment, either byte order.

/// Reads `size` bits (1..=64) at bit offset `pos` of `data`. Little-endian fields count bits
/// from the least significant bit of each byte, big-endian ones from the most significant
/// (CTF's rule). Returns `None` when the field does not fit in `data`.
#[inline]
pub fn read_bits(data: &[u8], pos: u64, size: u32, be: bool) -> Option<u64> {
    if size == 0 {
        return Some(0);
    }
    if size > 64 {
        return None;
    }
    let end = pos.checked_add(size as u64)?;
    if end > (data.len() as u64) * 8 {
        return None;
    }
    let byte = (pos >> 3) as usize;
    let shift = (pos & 7) as u32;
    // One unaligned 8-byte load covers the field.
    if shift + size <= 64 && byte + 8 <= data.len() {
        let w: [u8; 8] = data[byte..byte + 8].try_into().unwrap();
        let mask = if size == 64 {
            u64::MAX
        } else {
            (1u64 << size) - 1
        };
        return Some(if be {
            (u64::from_be_bytes(w) >> (64 - shift - size)) & mask
        } else {
            (u64::from_le_bytes(w) >> shift) & mask
        });
    }
    if shift == 0 && !be {
        match size {
            8 => return Some(data[byte] as u64),
            16 => return Some(u16::from_le_bytes([data[byte], data[byte + 1]]) as u64),
            32 => return Some(u32::from_le_bytes(data[byte..byte + 4].try_into().unwrap()) as u64),
            64 => return Some(u64::from_le_bytes(data[byte..byte + 8].try_into().unwrap())),
            _ => {}
        }
    }
    if shift == 0 && be {
        match size {
            8 => return Some(data[byte] as u64),
            16 => return Some(u16::from_be_bytes([data[byte], data[byte + 1]]) as u64),
            32 => return Some(u32::from_be_bytes(data[byte..byte + 4].try_into().unwrap()) as u64),
            64 => return Some(u64::from_be_bytes(data[byte..byte + 8].try_into().unwrap())),
            _ => {}
        }
    }
    let nbytes = (shift + size).div_ceil(8) as usize;
    let bytes = &data[byte..byte + nbytes];
    let mask: u128 = if size == 64 {
        u64::MAX as u128
    } else {
        (1u128 << size) - 1
    };
    let v = if be {
        let mut v: u128 = 0;
        for &b in bytes {
            v = (v << 8) | b as u128;
        }
        v >> (nbytes as u32 * 8 - shift - size)
    } else {
        let mut v: u128 = 0;
        for &b in bytes.iter().rev() {
            v = (v << 8) | b as u128;
        }
        v >> shift
    };
    Some((v & mask) as u64)
}

/// [`read_bits`] for the common case (the field and 8 bytes from its first byte lie in
/// `data`), inlined; falls back to [`read_bits`].
#[inline(always)]
pub fn read_fast(data: &[u8], pos: u64, size: u32, be: bool) -> Option<u64> {
    if size == 0 || size > 64 {
        return read_bits(data, pos, size, be);
    }
    read_masked(data, pos, size, u64::MAX >> (64 - size), be)
}

/// [`read_fast`] with the field's `mask` (its `size` low bits, `size` in 1..=64) computed once
/// by the caller: one load, a shift and a mask when the field's bits lie within the eight
/// bytes from its first one.
#[inline(always)]
pub fn read_masked(data: &[u8], pos: u64, size: u32, mask: u64, be: bool) -> Option<u64> {
    let byte = (pos >> 3) as usize;
    let shift = (pos & 7) as u32;
    match data.get(byte..byte.wrapping_add(8)) {
        Some(w) if !be && shift + size <= 64 => {
            Some((u64::from_le_bytes(w.try_into().ok()?) >> shift) & mask)
        }
        Some(w) if shift + size <= 64 => {
            Some((u64::from_be_bytes(w.try_into().ok()?) >> (64 - shift - size)) & mask)
        }
        _ => read_bits(data, pos, size, be),
    }
}

/// Sign-extends the low `size` bits of `v`.
#[inline]
pub fn sign_extend(v: u64, size: u32) -> i64 {
    if size == 0 || size >= 64 {
        v as i64
    } else {
        let s = 64 - size;
        ((v << s) as i64) >> s
    }
}

/// Reads an unsigned LEB128 at byte offset `pos`; returns the value and the number of bytes.
pub fn read_uleb(data: &[u8], pos: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut shift = 0u32;
    let mut i = pos;
    loop {
        let b = *data.get(i)?;
        i += 1;
        if shift < 64 {
            v |= ((b & 0x7f) as u64) << shift;
        }
        shift += 7;
        if b & 0x80 == 0 {
            return Some((v, i - pos));
        }
        if shift > 70 * 8 {
            return None;
        }
    }
}

/// Reads a signed LEB128 at byte offset `pos`.
pub fn read_sleb(data: &[u8], pos: usize) -> Option<(i64, usize)> {
    let mut v: i64 = 0;
    let mut shift = 0u32;
    let mut i = pos;
    loop {
        let b = *data.get(i)?;
        i += 1;
        if shift < 64 {
            v |= ((b & 0x7f) as i64) << shift;
        }
        shift += 7;
        if b & 0x80 == 0 {
            if shift < 64 && (b & 0x40) != 0 {
                v |= -1i64 << shift;
            }
            return Some((v, i - pos));
        }
        if shift > 70 * 8 {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: bit-by-bit reading.
    fn slow(data: &[u8], pos: u64, size: u32, be: bool) -> u64 {
        let mut v = 0u64;
        if be {
            for i in 0..size as u64 {
                let p = pos + i;
                let bit = (data[(p / 8) as usize] >> (7 - (p % 8))) & 1;
                v = (v << 1) | bit as u64;
            }
        } else {
            for i in 0..size as u64 {
                let p = pos + i;
                let bit = (data[(p / 8) as usize] >> (p % 8)) & 1;
                v |= (bit as u64) << i;
            }
        }
        v
    }

    #[test]
    fn all_sizes_offsets_orders() {
        let data: Vec<u8> = (0..32u32)
            .map(|i| (i.wrapping_mul(0x9d) ^ 0x5a) as u8)
            .collect();
        for be in [false, true] {
            for size in 1..=64u32 {
                for pos in 0..40u64 {
                    assert_eq!(
                        read_bits(&data, pos, size, be),
                        Some(slow(&data, pos, size, be)),
                        "size {size} pos {pos} be {be}"
                    );
                }
            }
        }
    }

    #[test]
    fn across_byte_boundaries() {
        // 0b1010_1100 0b0101_0011: LE 4 bits at 6 = bits 6,7 of byte0 (0,1... LSB first) ...
        let d = [0xAC, 0x53];
        assert_eq!(
            read_bits(&d, 6, 4, false),
            Some(0b1110 & 0xf).map(|_| (0xAC >> 6) | ((0x53 & 0x3) << 2))
        );
        assert_eq!(read_bits(&d, 4, 8, true), Some(0xC5));
        assert_eq!(read_bits(&d, 0, 16, true), Some(0xAC53));
        assert_eq!(read_bits(&d, 0, 16, false), Some(0x53AC));
        assert_eq!(read_bits(&d, 1, 16, false), None);
    }

    #[test]
    fn fast_path_agrees() {
        let data: Vec<u8> = (0..24u32)
            .map(|i| (i.wrapping_mul(0x3b) ^ 0xa5) as u8)
            .collect();
        for be in [false, true] {
            for size in 1..=64u32 {
                for pos in 0..(24 * 8 - size as u64) {
                    assert_eq!(
                        read_fast(&data, pos, size, be),
                        read_bits(&data, pos, size, be)
                    );
                }
            }
        }
    }

    #[test]
    fn signed() {
        assert_eq!(sign_extend(0b111, 3), -1);
        assert_eq!(sign_extend(0b011, 3), 3);
        assert_eq!(sign_extend(0x80, 8), -128);
        assert_eq!(sign_extend(u64::MAX, 64), -1);
        let d = [0xF0u8];
        assert_eq!(sign_extend(read_bits(&d, 4, 4, false).unwrap(), 4), -1);
        assert_eq!(sign_extend(read_bits(&d, 0, 4, true).unwrap(), 4), -1);
    }

    #[test]
    fn leb128() {
        assert_eq!(read_uleb(&[0xE5, 0x8E, 0x26], 0), Some((624485, 3)));
        assert_eq!(read_sleb(&[0xC0, 0xBB, 0x78], 0), Some((-123456, 3)));
        assert_eq!(read_uleb(&[0x80], 0), None);
    }
}
