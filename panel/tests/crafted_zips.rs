//! Exports built to deceive: a second copy of a recording under the same
//! name, a symlink, entries whose data overlap, a compressed "recording"
//! that inflates to far more than the manifest says. Each is not intact, in
//! `panel verify` and in the library check `panel receive` uses, and none is
//! read beyond its central directory. An honest zip built the same way is
//! intact, so each refusal is for its own reason.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use cctv_engine::evidence::manifest::{
    CameraInfo, FORMAT, FileEntry, MANIFEST_NAME, Manifest, PanelInfo,
};
use cctv_engine::evidence::verify::{Finding, verify};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

const REC: &str = "recordings/door/2026-11-21/door_20261121T140000.000Z.mkv";

fn recording() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn manifest_json(rec: &[u8]) -> Vec<u8> {
    let m = Manifest {
        format: FORMAT.into(),
        panel: PanelInfo {
            name: "test".into(),
            version: "panel test".into(),
        },
        created_us: 0,
        created: String::new(),
        from_us: 0,
        to_us: 1,
        cameras: vec![CameraInfo {
            id: "door".into(),
            name: "Door".into(),
        }],
        files: vec![FileEntry {
            path: REC.into(),
            camera_id: "door".into(),
            start_us: 0,
            end_us: 1,
            frames: 1,
            bytes: rec.len() as i64,
            sha256: hex::encode(Sha256::digest(rec)),
            status: "complete".into(),
            width: 16,
            height: 16,
            clip_of: Vec::new(),
        }],
        events: Vec::new(),
    };
    serde_json::to_vec(&m).unwrap()
}

fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)
}

/// A zip written by the zip crate: the manifest, then `entries`.
fn written(path: &Path, entries: &[(&str, &[u8], SimpleFileOptions)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    z.start_file(MANIFEST_NAME, stored()).unwrap();
    z.write_all(&manifest_json(&recording())).unwrap();
    for (name, data, options) in entries {
        z.start_file(*name, *options).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A stored zip written byte by byte, so it can say what the zip crate
/// never would: `entries` are (name, data); `central` lists, for each
/// central directory record, the name it carries and the index of the
/// local entry it points at.
fn raw(path: &Path, entries: &[(&str, Vec<u8>)], central: &[(&str, usize)]) {
    let mut out = Vec::new();
    let mut locals = Vec::new();
    for (name, data) in entries {
        locals.push((out.len() as u32, crc32(data), data.len() as u32));
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        out.extend_from_slice(&crc32(data).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
    }
    let cd_start = out.len() as u32;
    for (name, i) in central {
        let (offset, crc, len) = locals[*i];
        out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&((0o100644u32) << 16).to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    let cd_len = out.len() as u32 - cd_start;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(central.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u16).to_le_bytes());
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

/// `panel verify`'s exit code and what it printed.
fn panel_verify(path: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_panel"))
        .arg("verify")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Not intact, for the expected reason, in the library and the command.
fn refused(path: &Path, what: &str, expected: impl Fn(&Finding) -> bool) {
    let report = verify(path).unwrap();
    assert!(!report.intact(), "{what}: called intact");
    assert!(
        report.findings.iter().any(&expected),
        "{what}: {:?}",
        report.findings
    );
    assert!(report.intact_files.is_empty(), "{what}: a file was read");
    let (code, out) = panel_verify(path);
    assert_ne!(code, Some(0), "{what}: panel verify said {out}");
    assert!(out.contains("NOT INTACT"), "{what}: {out}");
}

#[test]
fn honest_zips_built_here_are_intact() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recording();
    let a = dir.path().join("written.zip");
    written(&a, &[(REC, &rec, stored())]);
    assert!(
        verify(&a).unwrap().intact(),
        "{:?}",
        verify(&a).unwrap().findings
    );
    let b = dir.path().join("raw.zip");
    raw(
        &b,
        &[(MANIFEST_NAME, manifest_json(&rec)), (REC, rec.clone())],
        &[(MANIFEST_NAME, 0), (REC, 1)],
    );
    assert!(
        verify(&b).unwrap().intact(),
        "{:?}",
        verify(&b).unwrap().findings
    );
    let (code, out) = panel_verify(&b);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_second_copy_under_the_same_name_is_not_intact() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recording();
    let mut forged = rec.clone();
    forged[1000] ^= 0xFF;
    // The forged copy first, the honest one last: `unzip -p` shows both,
    // a reader that looks names up finds the honest one.
    let path = dir.path().join("twice.zip");
    raw(
        &path,
        &[
            (MANIFEST_NAME, manifest_json(&rec)),
            (REC, forged),
            (REC, rec.clone()),
        ],
        &[(MANIFEST_NAME, 0), (REC, 1), (REC, 2)],
    );
    refused(&path, "duplicate names", |f| *f == Finding::DuplicateNames);
}

#[test]
fn a_symlink_is_not_a_recording() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("link.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    z.start_file(MANIFEST_NAME, stored()).unwrap();
    z.write_all(&manifest_json(&recording())).unwrap();
    z.add_symlink(REC, "/etc/passwd", SimpleFileOptions::default())
        .unwrap();
    z.finish().unwrap();
    refused(
        &path,
        "a symlink",
        |f| matches!(f, Finding::NotAFile { path } if path == REC),
    );
}

#[test]
fn entries_that_share_their_data_are_not_intact() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recording();
    // The second central record points into the first entry's data.
    let path = dir.path().join("overlap.zip");
    let other = "recordings/door/2026-11-21/other.mkv";
    raw(
        &path,
        &[(MANIFEST_NAME, manifest_json(&rec)), (REC, rec.clone())],
        &[(MANIFEST_NAME, 0), (REC, 1), (other, 1)],
    );
    refused(&path, "overlapping entries", |f| {
        matches!(f, Finding::Overlapping { .. })
    });
}

#[test]
fn a_compressed_recording_that_inflates_past_the_manifest_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    // 64 MiB of zeros: a few hundred KiB deflated.
    let bomb = vec![0u8; 64 << 20];
    let path = dir.path().join("bomb.zip");
    let deflated = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    written(&path, &[(REC, &bomb, deflated)]);
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    refused(
        &path,
        "a zip bomb",
        |f| matches!(f, Finding::WrongSize { size, .. } if *size == 64 << 20),
    );
}
