//! A moving synthetic scene with a burned-in clock, so an agent runs on any
//! machine and anyone can see at a glance that frames are live and current.

use std::time::{Duration, Instant};

use super::{Picture, Source, SourceError};
use crate::image::Bgr;
use crate::overlay::{clock_text, put, text_size};

pub struct TestPattern {
    width: u32,
    height: u32,
    label: String,
    background: Bgr,
    count: u64,
    started: Instant,
    next_due: Option<Instant>,
}

impl TestPattern {
    pub fn new(width: u32, height: u32, label: &str) -> Result<Self, SourceError> {
        if width == 0 || height == 0 {
            return Err(SourceError::Open {
                source_name: format!("test-pattern:{width}x{height}"),
                reason: "a picture needs a width and a height".into(),
            });
        }
        Ok(Self {
            width,
            height,
            label: label.to_string(),
            background: Self::background(width, height),
            count: 0,
            started: Instant::now(),
            next_due: None,
        })
    }

    /// Colour bars over the top two thirds, a grey ramp below: drawn once.
    fn background(width: u32, height: u32) -> Bgr {
        let (w, h) = (width as i32, height as i32);
        let mut m = Bgr::filled(width, height, [0, 0, 0]);
        let bars = [
            [192, 192, 192],
            [0, 192, 192],
            [192, 192, 0],
            [0, 192, 0],
            [192, 0, 192],
            [0, 0, 192],
            [192, 0, 0],
        ];
        let bar_w = w / bars.len() as i32 + 1;
        for (i, colour) in bars.iter().enumerate() {
            m.fill_rect(i as i32 * bar_w, 0, bar_w, h * 2 / 3, *colour);
        }
        let steps = 16;
        for i in 0..steps {
            let v = (255 * i / (steps - 1)) as u8;
            let x0 = w * i / steps;
            let x1 = w * (i + 1) / steps;
            m.fill_rect(x0, h * 2 / 3, x1 - x0, h - h * 2 / 3, [v, v, v]);
        }
        m
    }

    fn render(&self) -> Bgr {
        let (w, h) = (self.width as i32, self.height as i32);
        let mut frame = self.background.clone();
        let t = self.started.elapsed().as_secs_f64();
        // A ball bouncing across the picture and a sweeping line: motion you can see.
        let r = (h / 10).max(4);
        let span_x = (w - 2 * r).max(1) as f64;
        let span_y = (h - 2 * r).max(1) as f64;
        let bx = r as f64 + tri(t * 0.23) * span_x;
        let by = r as f64 + tri(t * 0.37) * span_y;
        frame.fill_circle(bx as i32, by as i32, r, [255, 255, 255]);
        let sweep = ((t * 0.5).fract() * w as f64) as i32;
        frame.fill_rect(sweep, 0, (w / 320).max(1), h, [0, 255, 255]);
        // The clock and the frame number, large, on a dark band, sized to fit.
        let clock = clock_text(cctv_protocol::now_us());
        let (unit_w, _) = text_size(&clock, 1);
        let scale = ((w as u32 * 9 / 10) / unit_w.max(1))
            .min(h as u32 / 60)
            .max(1);
        let (text_w, text_h) = text_size(&clock, scale);
        let x = (w - text_w as i32) / 2;
        let y = h / 3 - text_h as i32;
        frame.fill_rect(0, y - text_h as i32 / 2, w, text_h as i32 * 3, [0, 0, 0]);
        put(&mut frame, &clock, x, y, scale);
        let caption = format!("{}  #{}", self.label, self.count);
        put(
            &mut frame,
            &caption,
            x,
            y + text_h as i32 * 3 / 2,
            (scale / 2).max(1),
        );
        frame
    }
}

/// A triangle wave in 0..=1.
fn tri(x: f64) -> f64 {
    let f = x.fract();
    if f < 0.5 { f * 2.0 } else { 2.0 - f * 2.0 }
}

impl Source for TestPattern {
    fn describe(&self) -> String {
        format!("test-pattern:{}x{}", self.width, self.height)
    }

    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn native_fps(&self) -> Option<f64> {
        None
    }

    fn grab(&mut self, target_fps: f64) -> Result<(), SourceError> {
        let period = Duration::from_secs_f64(1.0 / target_fps.max(0.01));
        let now = Instant::now();
        let due = match self.next_due {
            Some(due) if due + period > now => due,
            _ => now, // first frame, or fell behind by more than a period
        };
        if due > now {
            std::thread::sleep(due - now);
        }
        self.next_due = Some(due + period);
        self.count += 1;
        Ok(())
    }

    fn retrieve(&mut self) -> Result<Picture, SourceError> {
        Ok(Picture::Bgr(self.render()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_moves_between_frames() {
        let mut p = TestPattern::new(320, 180, "t").unwrap();
        p.grab(50.0).unwrap();
        let Picture::Bgr(a) = p.retrieve().unwrap() else {
            panic!()
        };
        std::thread::sleep(Duration::from_millis(300));
        p.grab(50.0).unwrap();
        let Picture::Bgr(b) = p.retrieve().unwrap() else {
            panic!()
        };
        assert_eq!((a.width, a.height), (320, 180));
        let differing = a.data.iter().zip(&b.data).filter(|(x, y)| x != y).count();
        assert!(differing > 500, "only {differing} bytes changed");
    }
}
