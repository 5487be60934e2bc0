//! The agent's own picture type: 8-bit BGR pixels in a plain buffer, and
//! the little it needs to do to them (fill, scale down, convert a webcam's
//! raw formats). No image library: a camera host should not need one.

/// An 8-bit BGR picture, rows packed (`width * 3` bytes each).
#[derive(Clone, PartialEq, Eq)]
pub struct Bgr {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Bgr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bgr({}x{})", self.width, self.height)
    }
}

/// A colour, in BGR order.
pub type Colour = [u8; 3];

impl Bgr {
    /// A picture of one colour.
    pub fn filled(width: u32, height: u32, colour: Colour) -> Self {
        let n = width as usize * height as usize;
        let mut data = Vec::with_capacity(n * 3);
        for _ in 0..n {
            data.extend_from_slice(&colour);
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// Fills the rectangle at (`x`, `y`) of `w`x`h`, clipped to the picture.
    pub fn fill_rect(&mut self, x: i32, y: i32, w: i32, h: i32, colour: Colour) {
        let (x0, x1) = clip(x, w, self.width);
        let (y0, y1) = clip(y, h, self.height);
        if x0 >= x1 {
            return;
        }
        let stride = self.width as usize * 3;
        for row in y0..y1 {
            let line = &mut self.data[row * stride + x0 * 3..row * stride + x1 * 3];
            for px in line.chunks_exact_mut(3) {
                px.copy_from_slice(&colour);
            }
        }
    }

    /// Fills the disc of radius `r` around (`cx`, `cy`), clipped.
    pub fn fill_circle(&mut self, cx: i32, cy: i32, r: i32, colour: Colour) {
        let r = r.max(0);
        for dy in -r..=r {
            let half = f64::from(r * r - dy * dy).sqrt() as i32;
            self.fill_rect(cx - half, cy + dy, 2 * half + 1, 1, colour);
        }
    }

    /// Scales down (or keeps) to `w`x`h`, each output pixel the mean of the
    /// source pixels it covers: what a camera operator expects of a
    /// smaller picture, without the shimmer of picking pixels.
    pub fn resize_area(&self, w: u32, h: u32) -> Bgr {
        if (w, h) == (self.width, self.height) || w == 0 || h == 0 {
            return self.clone();
        }
        let (sw, sh) = (self.width as usize, self.height as usize);
        let (w, h) = (w as usize, h as usize);
        let spans = |out: usize, src: usize| -> Vec<(usize, usize)> {
            (0..out)
                .map(|i| {
                    let a = i * src / out;
                    let b = ((i + 1) * src / out).max(a + 1).min(src);
                    (a, b)
                })
                .collect()
        };
        let (xs, ys) = (spans(w, sw), spans(h, sh));
        let mut data = vec![0u8; w * h * 3];
        let mut sums = vec![0u32; w * 3];
        for (oy, &(y0, y1)) in ys.iter().enumerate() {
            sums.iter_mut().for_each(|s| *s = 0);
            for y in y0..y1 {
                let row = &self.data[y * sw * 3..(y + 1) * sw * 3];
                for (ox, &(x0, x1)) in xs.iter().enumerate() {
                    let s = &mut sums[ox * 3..ox * 3 + 3];
                    for px in row[x0 * 3..x1 * 3].chunks_exact(3) {
                        s[0] += u32::from(px[0]);
                        s[1] += u32::from(px[1]);
                        s[2] += u32::from(px[2]);
                    }
                }
            }
            let out = &mut data[oy * w * 3..(oy + 1) * w * 3];
            for (ox, &(x0, x1)) in xs.iter().enumerate() {
                let n = ((x1 - x0) * (y1 - y0)) as u32;
                for c in 0..3 {
                    out[ox * 3 + c] = ((sums[ox * 3 + c] + n / 2) / n) as u8;
                }
            }
        }
        Bgr {
            width: w as u32,
            height: h as u32,
            data,
        }
    }

    /// Scales down by a whole `k` in each direction (the edge's leftover
    /// pixels dropped), each output pixel the mean of its `k`x`k` block:
    /// the same picture as [`Bgr::resize_area`] gives at that size, in a
    /// fraction of its time (rows are summed whole, then blocks).
    pub fn shrink(&self, k: u32) -> Bgr {
        // Up to 16: a block's sum fits in 16 bits.
        let k = k.clamp(1, 16) as usize;
        let (sw, w, h) = (
            self.width as usize,
            self.width as usize / k,
            self.height as usize / k,
        );
        let mut data = vec![0u8; w * h * 3];
        let mut sums = vec![0u16; sw * 3];
        let (n, stride) = (k * k, sw * 3);
        // The rounded mean of every possible block sum, looked up.
        let mean: Vec<u8> = (0..=255 * n).map(|t| ((t + n / 2) / n) as u8).collect();
        for (oy, out) in data.chunks_exact_mut(w * 3).enumerate() {
            sums.fill(0);
            for row in self.data[oy * k * stride..(oy * k + k) * stride].chunks_exact(stride) {
                for (s, &v) in sums.iter_mut().zip(row) {
                    *s += u16::from(v);
                }
            }
            for (px, block) in out.chunks_exact_mut(3).zip(sums.chunks_exact(3 * k)) {
                let mut t = [0usize; 3];
                for p in block.chunks_exact(3) {
                    t[0] += usize::from(p[0]);
                    t[1] += usize::from(p[1]);
                    t[2] += usize::from(p[2]);
                }
                for c in 0..3 {
                    px[c] = mean[t[c]];
                }
            }
        }
        Bgr {
            width: w as u32,
            height: h as u32,
            data,
        }
    }
}

/// `[start, end)` of a span at `at` of length `len`, inside `0..limit`.
fn clip(at: i32, len: i32, limit: u32) -> (usize, usize) {
    let limit = i64::from(limit);
    let a = i64::from(at).clamp(0, limit);
    let b = (i64::from(at) + i64::from(len.max(0))).clamp(0, limit);
    (a as usize, b.max(a) as usize)
}

/// Raw pixel formats a webcam may deliver besides MJPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFormat {
    /// 4:2:2, Y0 U Y1 V.
    Yuyv,
    /// 4:2:0, a Y plane then interleaved U V.
    Nv12,
    Rgb,
    Bgr,
    Gray,
}

impl RawFormat {
    /// Bytes a `w`x`h` frame takes.
    pub fn frame_len(self, w: usize, h: usize) -> usize {
        match self {
            RawFormat::Yuyv => w * h * 2,
            RawFormat::Nv12 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
            RawFormat::Rgb | RawFormat::Bgr => w * h * 3,
            RawFormat::Gray => w * h,
        }
    }
}

/// BT.601 limited-range YUV to BGR, in integers.
fn yuv_to_bgr(y: u8, u: u8, v: u8) -> Colour {
    let c = (i32::from(y) - 16).max(0) * 298;
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let px = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [px(c + 516 * d), px(c - 100 * d - 208 * e), px(c + 409 * e)]
}

/// A raw frame too short for its format and size.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{format:?} frame of {got} bytes, expected {expected}")]
pub struct ShortFrame {
    pub format: RawFormat,
    pub got: usize,
    pub expected: usize,
}

/// A webcam's raw frame as BGR; an error says what is wrong with it.
pub fn from_raw(format: RawFormat, data: &[u8], w: u32, h: u32) -> Result<Bgr, ShortFrame> {
    let (wu, hu) = (w as usize, h as usize);
    let expected = format.frame_len(wu, hu);
    if data.len() < expected {
        return Err(ShortFrame {
            format,
            got: data.len(),
            expected,
        });
    }
    let mut out = Vec::with_capacity(wu * hu * 3);
    match format {
        RawFormat::Bgr => out.extend_from_slice(&data[..expected]),
        RawFormat::Rgb => {
            for p in data[..expected].chunks_exact(3) {
                out.extend_from_slice(&[p[2], p[1], p[0]]);
            }
        }
        RawFormat::Gray => {
            for &g in &data[..expected] {
                out.extend_from_slice(&[g, g, g]);
            }
        }
        RawFormat::Yuyv => {
            for row in data[..expected].chunks_exact(wu * 2) {
                for (i, pair) in row.chunks(4).enumerate() {
                    let (u, v) = (pair[1], *pair.get(3).unwrap_or(&128));
                    out.extend_from_slice(&yuv_to_bgr(pair[0], u, v));
                    if i * 2 + 1 < wu {
                        out.extend_from_slice(&yuv_to_bgr(pair[2], u, v));
                    }
                }
            }
        }
        RawFormat::Nv12 => {
            let (luma, chroma) = data.split_at(wu * hu);
            let cw = 2 * wu.div_ceil(2);
            for y in 0..hu {
                for x in 0..wu {
                    let c = (y / 2) * cw + (x / 2) * 2;
                    out.extend_from_slice(&yuv_to_bgr(luma[y * wu + x], chroma[c], chroma[c + 1]));
                }
            }
        }
    }
    Ok(Bgr {
        width: w,
        height: h,
        data: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_and_discs_are_clipped_to_the_picture() {
        let mut p = Bgr::filled(10, 6, [0, 0, 0]);
        p.fill_rect(-5, 4, 100, 100, [1, 2, 3]);
        p.fill_circle(9, 0, 3, [9, 9, 9]);
        let at = |x: usize, y: usize| &p.data[(y * 10 + x) * 3..(y * 10 + x) * 3 + 3];
        assert_eq!(at(0, 5), [1, 2, 3]);
        assert_eq!(at(9, 4), [1, 2, 3]);
        assert_eq!(at(0, 3), [0, 0, 0]);
        assert_eq!(at(9, 0), [9, 9, 9]);
        assert_eq!(at(0, 0), [0, 0, 0]);
        assert_eq!(p.data.len(), 10 * 6 * 3);
    }

    #[test]
    fn scaling_down_averages_what_each_pixel_covers() {
        // Black and white columns: halved, every pixel is mid grey.
        let mut p = Bgr::filled(8, 4, [0, 0, 0]);
        for x in (0..8).step_by(2) {
            p.fill_rect(x, 0, 1, 4, [255, 255, 255]);
        }
        let half = p.resize_area(4, 2);
        assert_eq!((half.width, half.height), (4, 2));
        assert!(half.data.iter().all(|&v| v == 128), "{:?}", half.data);
        // An odd ratio keeps the size asked for.
        let odd = Bgr::filled(7, 5, [10, 20, 30]).resize_area(3, 2);
        assert_eq!(odd.data.len(), 3 * 2 * 3);
        assert!(odd.data.chunks(3).all(|px| px == [10, 20, 30]));
    }

    #[test]
    fn shrinking_by_a_whole_factor_is_scaling_down_to_that_size() {
        // A picture with detail in every pixel, 2 columns and a row left over.
        let mut p = Bgr::filled(26, 13, [0, 0, 0]);
        for (i, v) in p.data.iter_mut().enumerate() {
            *v = (i * 37 % 251) as u8;
        }
        let cut = Bgr {
            width: 24,
            height: 12,
            data: p
                .data
                .chunks_exact(26 * 3)
                .take(12)
                .flat_map(|row| row[..24 * 3].to_vec())
                .collect(),
        };
        for k in [1, 2, 3, 4] {
            let s = p.shrink(k);
            assert_eq!((s.width, s.height), (26 / k, 13 / k));
            let (w, h) = (24 / k, 12 / k);
            let area = cut.resize_area(w, h);
            let s_cut: Vec<u8> = s
                .data
                .chunks_exact(s.width as usize * 3)
                .take(h as usize)
                .flat_map(|row| row[..w as usize * 3].to_vec())
                .collect();
            assert_eq!(s_cut, area.data, "k = {k}");
        }
    }

    #[test]
    fn raw_webcam_formats_become_the_same_colours() {
        // Mid grey in every format.
        let (w, h) = (4, 2);
        let yuyv = [126u8, 128, 126, 128].repeat(w * h / 2);
        let nv12 = [vec![126u8; w * h], vec![128u8; w * h / 2]].concat();
        let rgb = vec![128u8; w * h * 3];
        let gray = vec![128u8; w * h];
        for (format, data) in [
            (RawFormat::Yuyv, yuyv),
            (RawFormat::Nv12, nv12),
            (RawFormat::Rgb, rgb),
            (RawFormat::Gray, gray),
        ] {
            let p = from_raw(format, &data, w as u32, h as u32).unwrap();
            assert_eq!(p.data.len(), w * h * 3);
            assert!(
                p.data.iter().all(|&v| v.abs_diff(128) <= 2),
                "{format:?}: {:?}",
                p.data
            );
        }
        // Red stays red: V high, U low.
        let red = from_raw(RawFormat::Yuyv, &[81, 90, 81, 240], 2, 1).unwrap();
        assert!(red.data[2] > 200 && red.data[0] < 40, "{:?}", red.data);
        let short = from_raw(RawFormat::Yuyv, &[0; 10], 4, 2);
        assert!(short.unwrap_err().to_string().contains("expected 16"));
    }
}
