//! A moving synthetic scene with a burned-in clock, so an agent runs on any
//! machine and anyone can see at a glance that frames are live and current.

use std::time::{Duration, Instant};

use opencv::core::{CV_8UC3, Mat, Point, Rect, Scalar};
use opencv::imgproc;
use opencv::prelude::*;

use super::{Picture, Source, SourceError, cv_reason};
use crate::overlay::{clock_text, put};

pub struct TestPattern {
    width: u32,
    height: u32,
    label: String,
    background: Mat,
    frame: Mat,
    count: u64,
    started: Instant,
    next_due: Option<Instant>,
}

fn err(e: opencv::Error) -> SourceError {
    SourceError::Capture {
        source_name: "test-pattern".into(),
        reason: cv_reason(e),
    }
}

impl TestPattern {
    pub fn new(width: u32, height: u32, label: &str) -> Result<Self, SourceError> {
        let background = Self::background(width as i32, height as i32).map_err(err)?;
        Ok(Self {
            width,
            height,
            label: label.to_string(),
            frame: background.clone(),
            background,
            count: 0,
            started: Instant::now(),
            next_due: None,
        })
    }

    /// Colour bars over the top two thirds, a grey ramp below: drawn once.
    fn background(w: i32, h: i32) -> opencv::Result<Mat> {
        let mut m = Mat::new_rows_cols_with_default(h, w, CV_8UC3, Scalar::all(0.0))?;
        let bars = [
            (192., 192., 192.),
            (0., 192., 192.),
            (192., 192., 0.),
            (0., 192., 0.),
            (192., 0., 192.),
            (0., 0., 192.),
            (192., 0., 0.),
        ];
        let bar_w = w / bars.len() as i32 + 1;
        for (i, (b, g, r)) in bars.iter().enumerate() {
            let rect = Rect::new(i as i32 * bar_w, 0, bar_w, h * 2 / 3);
            imgproc::rectangle(
                &mut m,
                rect,
                Scalar::new(*b, *g, *r, 0.0),
                -1,
                imgproc::LINE_8,
                0,
            )?;
        }
        let steps = 16;
        for i in 0..steps {
            let v = 255.0 * i as f64 / (steps - 1) as f64;
            let x0 = w * i / steps;
            let x1 = w * (i + 1) / steps;
            let rect = Rect::new(x0, h * 2 / 3, x1 - x0, h - h * 2 / 3);
            imgproc::rectangle(&mut m, rect, Scalar::all(v), -1, imgproc::LINE_8, 0)?;
        }
        Ok(m)
    }

    fn render(&mut self) -> opencv::Result<()> {
        let (w, h) = (self.width as i32, self.height as i32);
        self.background.copy_to(&mut self.frame)?;
        let t = self.started.elapsed().as_secs_f64();
        // A ball bouncing across the picture and a sweeping line: motion you can see.
        let r = (h / 10).max(4);
        let span_x = (w - 2 * r).max(1) as f64;
        let span_y = (h - 2 * r).max(1) as f64;
        let bx = r as f64 + tri(t * 0.23) * span_x;
        let by = r as f64 + tri(t * 0.37) * span_y;
        imgproc::circle(
            &mut self.frame,
            Point::new(bx as i32, by as i32),
            r,
            Scalar::new(255.0, 255.0, 255.0, 0.0),
            -1,
            imgproc::LINE_AA,
            0,
        )?;
        let sweep = ((t * 0.5).fract() * w as f64) as i32;
        imgproc::line(
            &mut self.frame,
            Point::new(sweep, 0),
            Point::new(sweep, h - 1),
            Scalar::new(0.0, 255.0, 255.0, 0.0),
            (w / 320).max(1),
            imgproc::LINE_8,
            0,
        )?;
        // The clock and the frame number, large, on a dark band, sized to fit.
        let clock = clock_text(cctv_protocol::now_us());
        let mut base = 0;
        let unit =
            imgproc::get_text_size(&clock, imgproc::FONT_HERSHEY_SIMPLEX, 1.0, 2, &mut base)?;
        let scale = (f64::from(w) * 0.9 / f64::from(unit.width.max(1))).min(f64::from(h) / 200.0);
        let text_w = (f64::from(unit.width) * scale) as i32;
        let text_h = (f64::from(unit.height) * scale) as i32;
        let x = (w - text_w) / 2;
        let y = h / 3;
        let band = Rect::new(0, y - text_h - text_h / 2, w, text_h * 3);
        imgproc::rectangle(
            &mut self.frame,
            band,
            Scalar::all(0.0),
            -1,
            imgproc::LINE_8,
            0,
        )?;
        let thick = (scale * 2.0).round().max(1.0) as i32;
        put(&mut self.frame, &clock, Point::new(x, y), scale, thick)?;
        let caption = format!("{}  #{}", self.label, self.count);
        put(
            &mut self.frame,
            &caption,
            Point::new(x, y + text_h),
            scale * 0.5,
            thick.div_euclid(2).max(1),
        )?;
        Ok(())
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
        self.render().map_err(err)?;
        Ok(Picture::Bgr(self.frame.clone()))
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
        assert_eq!((a.cols(), a.rows()), (320, 180));
        let differing = a
            .data_bytes()
            .unwrap()
            .iter()
            .zip(b.data_bytes().unwrap())
            .filter(|(x, y)| x != y)
            .count();
        assert!(differing > 500, "only {differing} bytes changed");
    }
}
