//! The camera-host build (default features) links no OpenCV: a small board
//! next to a webcam needs none of its ~200 MB of libraries.

use std::process::Command;

#[test]
fn the_default_build_depends_on_no_opencv() {
    let tree = |features: &[&str]| {
        let out = Command::new(env!("CARGO"))
            .args([
                "tree",
                "-p",
                "camera-agent",
                "-e",
                "normal",
                "--prefix",
                "none",
            ])
            .args(features)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo tree");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let has_opencv = |t: &str| t.lines().any(|l| l.starts_with("opencv "));
    let lean = tree(&[]);
    assert!(
        !has_opencv(&lean),
        "the default build pulls OpenCV:\n{lean}"
    );
    assert!(lean.lines().any(|l| l.starts_with("turbojpeg ")));
    // The file-playing build does use it: the check can tell.
    assert!(has_opencv(&tree(&["--features", "file"])));
}
