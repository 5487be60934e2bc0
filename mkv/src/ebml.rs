//! The EBML element IDs and encodings that Matroska files are made of: just
//! the ones our recordings use. Pure functions over byte buffers.

pub const EBML: u32 = 0x1A45_DFA3;
pub const EBML_VERSION: u32 = 0x4286;
pub const EBML_READ_VERSION: u32 = 0x42F7;
pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
pub const DOC_TYPE: u32 = 0x4282;
pub const DOC_TYPE_VERSION: u32 = 0x4287;
pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;

pub const SEGMENT: u32 = 0x1853_8067;
pub const SEEK_HEAD: u32 = 0x114D_9B74;
pub const SEEK: u32 = 0x4DBB;
pub const SEEK_ID: u32 = 0x53AB;
pub const SEEK_POSITION: u32 = 0x53AC;
pub const INFO: u32 = 0x1549_A966;
pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
pub const DURATION: u32 = 0x4489;
pub const DATE_UTC: u32 = 0x4461;
pub const TITLE: u32 = 0x7BA9;
pub const MUXING_APP: u32 = 0x4D80;
pub const WRITING_APP: u32 = 0x5741;
pub const TRACKS: u32 = 0x1654_AE6B;
pub const TRACK_ENTRY: u32 = 0xAE;
pub const TRACK_NUMBER: u32 = 0xD7;
pub const TRACK_UID: u32 = 0x73C5;
pub const TRACK_TYPE: u32 = 0x83;
pub const CODEC_ID: u32 = 0x86;
pub const FLAG_LACING: u32 = 0x9C;
pub const VIDEO: u32 = 0xE0;
pub const PIXEL_WIDTH: u32 = 0xB0;
pub const PIXEL_HEIGHT: u32 = 0xBA;
pub const CODEC_PRIVATE: u32 = 0x63A2;
pub const CODEC_DELAY: u32 = 0x56AA;
pub const SEEK_PRE_ROLL: u32 = 0x56BB;
pub const AUDIO: u32 = 0xE1;
pub const SAMPLING_FREQUENCY: u32 = 0xB5;
pub const CHANNELS: u32 = 0x9F;
pub const CLUSTER: u32 = 0x1F43_B675;
pub const CLUSTER_TIMESTAMP: u32 = 0xE7;
pub const SIMPLE_BLOCK: u32 = 0xA3;
pub const CUES: u32 = 0x1C53_BB6B;
pub const CUE_POINT: u32 = 0xBB;
pub const CUE_TIME: u32 = 0xB3;
pub const CUE_TRACK_POSITIONS: u32 = 0xB7;
pub const CUE_TRACK: u32 = 0xF7;
pub const CUE_CLUSTER_POSITION: u32 = 0xF1;
pub const VOID: u32 = 0xEC;

/// The size field of an element whose end is not known yet.
pub const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// Nanoseconds from the Unix epoch to Matroska's epoch, 2001-01-01T00:00:00Z.
pub const MATROSKA_EPOCH_UNIX_NS: i64 = 978_307_200_000_000_000;

pub fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.extend_from_slice(&bytes[skip..]);
}

/// A size as a variable-length integer in the fewest bytes.
pub fn put_size(out: &mut Vec<u8>, size: u64) {
    let mut len = 1;
    while len < 8 && size >= (1u64 << (7 * len)) - 1 {
        len += 1;
    }
    put_size_fixed(out, size, len);
}

/// A size as a variable-length integer of exactly `len` bytes (1..=8).
pub fn put_size_fixed(out: &mut Vec<u8>, size: u64, len: usize) {
    let marked = size | (1u64 << (7 * len));
    out.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

pub fn put_uint(out: &mut Vec<u8>, id: u32, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    put_id(out, id);
    put_size(out, (8 - skip) as u64);
    out.extend_from_slice(&bytes[skip..]);
}

/// An unsigned integer always 8 bytes long, so it can be patched in place.
pub fn put_uint8(out: &mut Vec<u8>, id: u32, v: u64) {
    put_id(out, id);
    put_size(out, 8);
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_int(out: &mut Vec<u8>, id: u32, v: i64) {
    put_id(out, id);
    put_size(out, 8);
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_float(out: &mut Vec<u8>, id: u32, v: f64) {
    put_id(out, id);
    put_size(out, 8);
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_str(out: &mut Vec<u8>, id: u32, s: &str) {
    put_id(out, id);
    put_size(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub fn put_master(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    put_id(out, id);
    put_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// A Void element of exactly `total` bytes (at least 2), header included.
pub fn put_void(out: &mut Vec<u8>, total: usize) {
    assert!(total >= 2, "a Void element needs 2 bytes");
    // One ID byte, then a size field of 1 byte (or 8 for large voids).
    let size_len = if total - 2 < 127 { 1 } else { 8 };
    let data = total - 1 - size_len;
    put_id(out, VOID);
    put_size_fixed(out, data as u64, size_len);
    out.resize(out.len() + data, 0);
}

/// Reads an element ID at the start of `b`: (id, length in bytes).
pub fn read_id(b: &[u8]) -> Option<(u32, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 || b.len() < len {
        return None;
    }
    Some((
        b[..len]
            .iter()
            .fold(0u32, |acc, x| acc << 8 | u32::from(*x)),
        len,
    ))
}

/// Reads a size at the start of `b`: (size, length in bytes); `None` size
/// means "unknown".
pub fn read_size(b: &[u8]) -> Option<(Option<u64>, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || b.len() < len {
        return None;
    }
    let mut v = u64::from(first) & ((1u64 << (8 - len)) - 1);
    for x in &b[1..len] {
        v = v << 8 | u64::from(*x);
    }
    let all_ones = (1u64 << (7 * len)) - 1;
    Some(((v != all_ones).then_some(v), len))
}

pub fn read_uint(b: &[u8]) -> u64 {
    b.iter()
        .take(8)
        .fold(0u64, |acc, x| acc << 8 | u64::from(*x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip_at_every_length() {
        for v in [
            0u64,
            1,
            126,
            127,
            128,
            16_382,
            16_383,
            1 << 20,
            (1 << 56) - 2,
        ] {
            let mut b = Vec::new();
            put_size(&mut b, v);
            assert_eq!(read_size(&b), Some((Some(v), b.len())), "{v}");
        }
        assert_eq!(read_size(&UNKNOWN_SIZE), Some((None, 8)));
    }

    #[test]
    fn ids_round_trip() {
        for id in [
            EBML,
            SEGMENT,
            CLUSTER,
            SIMPLE_BLOCK,
            TIMESTAMP_SCALE,
            SEEK_ID,
        ] {
            let mut b = Vec::new();
            put_id(&mut b, id);
            assert_eq!(read_id(&b), Some((id, b.len())));
        }
    }

    #[test]
    fn void_has_exactly_the_asked_size() {
        for total in [2, 3, 11, 28, 128, 129, 130, 500] {
            let mut b = Vec::new();
            put_void(&mut b, total);
            assert_eq!(b.len(), total);
            let (id, il) = read_id(&b).unwrap();
            let (size, sl) = read_size(&b[il..]).unwrap();
            assert_eq!(id, VOID);
            assert_eq!(il + sl + size.unwrap() as usize, total);
        }
    }
}
