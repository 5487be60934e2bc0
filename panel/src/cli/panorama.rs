//! `panel panorama --video FILE | --images DIR [--out PATH] [--scans] [--time-limit SECS]`:
//! prints the panorama's path on success (exit 0); explains the failure and
//! where the tried frames were saved otherwise (exit 1).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use cctv_panorama::stitch::Mode;
use cctv_panorama::{self as panorama, Request, Source};

pub async fn run(
    video: Option<PathBuf>,
    images: Option<PathBuf>,
    out: Option<PathBuf>,
    scans: bool,
    time_limit_secs: u64,
) -> anyhow::Result<ExitCode> {
    let (source, input) = match (video, images) {
        (Some(v), _) => (Source::Video(v.clone()), v),
        (None, Some(d)) => (Source::Images(d.clone()), d),
        (None, None) => return Err(anyhow::anyhow!("give --video FILE or --images DIR")),
    };
    let out = out.unwrap_or_else(|| {
        let stem = input
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("input");
        PathBuf::from(format!("{stem}_panorama.jpg"))
    });
    let worker = std::env::current_exe()?;
    let req = Request {
        source,
        mode: if scans { Mode::Scans } else { Mode::Panorama },
        out,
        worker,
        params: Default::default(),
        every: None,
        opencv_defaults: false,
        time_limit: Some(std::time::Duration::from_secs(time_limit_secs.max(1))),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        c.store(true, std::sync::atomic::Ordering::Release);
    });
    let result = tokio::task::spawn_blocking(move || {
        panorama::run(&req, &cancel, &mut |stage| eprintln!("panorama: {stage}"))
    })
    .await?;
    match result {
        Ok(r) => {
            eprintln!(
                "panorama: {}x{} from {} of {} frames (chosen: {:?}; skipped {} blurred, {} near-duplicates; stitcher kept {}); selection {:.1} s, stitch {:.1} s",
                r.width,
                r.height,
                r.chosen.len(),
                r.stats.seen,
                r.chosen,
                r.stats.blurred,
                r.stats.duplicates,
                r.used,
                r.select_ms as f64 / 1000.0,
                r.stitch_ms as f64 / 1000.0
            );
            say!("{}", r.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            eprintln!("panel: panorama failed: {}", f.message());
            eprintln!(
                "panel: the {} frame(s) tried are in {}",
                f.chosen.len(),
                f.samples.display()
            );
            Ok(ExitCode::from(1))
        }
    }
}
