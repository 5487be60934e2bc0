//! `panel verify`: re-hashes every file of an export against its manifest
//! and says plainly whether the evidence is intact, naming any file that
//! differs, is missing, or should not be there.
//!
//! The zip itself is checked before a byte of it is read: two entries under
//! one name, an entry that is not a regular file (a symlink, a directory),
//! entries whose data overlap, or a recording whose sizes are not the
//! manifest's (or that is compressed: recordings are stored as they are)
//! make the export not intact. So a crafted zip can neither hide a second
//! copy of a file nor make the check read more than the zip holds.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::manifest::{MANIFEST_NAME, MAX_MANIFEST_BYTES, Manifest};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The file's hash differs from the manifest's.
    Differs {
        path: String,
        expected: String,
        actual: String,
    },
    /// Listed in the manifest, absent from the zip.
    Missing { path: String },
    /// Present but cannot be read back (its zip checksum fails, or it is cut short).
    Damaged { path: String, error: String },
    /// In the zip, not in the manifest.
    Unexpected { path: String },
    /// Two or more entries carry one name: which copy is the evidence?
    DuplicateNames,
    /// A symlink, a directory or anything else that is not a plain file.
    NotAFile { path: String },
    /// Its data overlaps another entry's (a zip bomb's trick).
    Overlapping { path: String },
    /// Its sizes in the zip are not the manifest's, or it is compressed.
    WrongSize {
        path: String,
        manifest: i64,
        stored: u64,
        size: u64,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Differs {
                path,
                expected,
                actual,
            } => write!(
                f,
                "{path} DIFFERS from the manifest (SHA-256 {actual}, manifest says {expected})"
            ),
            Finding::Missing { path } => write!(f, "{path} is MISSING from the export"),
            Finding::Damaged { path, error } => write!(f, "{path} is DAMAGED: {error}"),
            Finding::Unexpected { path } => {
                write!(f, "{path} is in the export but NOT in the manifest")
            }
            Finding::DuplicateNames => {
                write!(f, "the export has two or more entries under one name")
            }
            Finding::NotAFile { path } => write!(f, "{path} is NOT A PLAIN FILE"),
            Finding::Overlapping { path } => {
                write!(f, "{path} OVERLAPS another entry of the zip")
            }
            Finding::WrongSize {
                path,
                manifest,
                stored,
                size,
            } => write!(
                f,
                "{path} has the WRONG SIZE: {size} bytes ({stored} stored), the manifest says {manifest}"
            ),
        }
    }
}

#[derive(Debug)]
pub struct Report {
    pub manifest: Manifest,
    /// Files whose hash matched.
    pub intact_files: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.findings.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{0} is not a readable zip: {1}")]
    Zip(String, zip::result::ZipError),
    #[error("{0} has no manifest.json: it is not an export of this panel")]
    NoManifest(String),
    #[error(transparent)]
    Manifest(#[from] super::manifest::ManifestError),
}

fn hash(r: &mut impl Read) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// Reads and checks the manifest of an open export.
pub fn read_manifest<R: Read + io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
) -> Result<Manifest, VerifyError> {
    let mut entry = zip
        .by_name(MANIFEST_NAME)
        .map_err(|_| VerifyError::NoManifest(name.to_string()))?;
    if entry.size() > MAX_MANIFEST_BYTES {
        return Err(super::manifest::ManifestError::TooLarge.into());
    }
    let mut bytes = Vec::new();
    entry
        .by_ref()
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|source| VerifyError::Io {
            path: format!("{name}:{MANIFEST_NAME}"),
            source,
        })?;
    Ok(Manifest::parse(&bytes)?)
}

/// What is wrong with the zip's entries as entries, found from the central
/// directory alone.
fn structure<R: Read + io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    manifest: &Manifest,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if zip.has_duplicate_names() {
        findings.push(Finding::DuplicateNames);
    }
    // (start, least end, name) of each entry: a local header is at least 30
    // bytes and the name.
    let mut spans = Vec::new();
    for i in 0..zip.len() {
        let Ok(f) = zip.by_index_raw(i) else {
            continue;
        };
        let path = String::from_utf8_lossy(f.name_raw()).into_owned();
        if !f.is_file() || f.is_symlink() {
            findings.push(Finding::NotAFile { path: path.clone() });
        }
        let least = 30 + f.name_raw().len() as u64 + f.compressed_size();
        spans.push((
            f.header_start(),
            f.header_start().saturating_add(least),
            path.clone(),
        ));
        if let Some(listed) = manifest.files.iter().find(|e| e.path == path) {
            let stored = f.compressed_size();
            let size = f.size();
            if size != listed.bytes as u64 || stored != size {
                findings.push(Finding::WrongSize {
                    path,
                    manifest: listed.bytes,
                    stored,
                    size,
                });
            }
        }
    }
    spans.sort();
    for pair in spans.windows(2) {
        if pair[1].0 < pair[0].1 {
            findings.push(Finding::Overlapping {
                path: pair[1].2.clone(),
            });
        }
    }
    findings
}

pub fn verify(path: &Path) -> Result<Report, VerifyError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| VerifyError::Io {
        path: name.clone(),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| VerifyError::Zip(name.clone(), e))?;
    let manifest = read_manifest(&mut zip, &name)?;
    let mut findings = structure(&mut zip, &manifest);
    let mut intact_files = Vec::new();
    let listed: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    // A zip built to deceive is not read any further.
    let readable = findings.is_empty();
    for entry in manifest.files.iter().filter(|_| readable) {
        match zip.by_name(&entry.path) {
            Ok(mut f) => {
                // A changed byte usually breaks the zip's own checksum first.
                let actual = match hash(&mut f) {
                    Ok(a) => a,
                    Err(e) => {
                        findings.push(Finding::Damaged {
                            path: entry.path.clone(),
                            error: e.to_string(),
                        });
                        continue;
                    }
                };
                if actual.eq_ignore_ascii_case(&entry.sha256) {
                    intact_files.push(entry.path.clone());
                } else {
                    findings.push(Finding::Differs {
                        path: entry.path.clone(),
                        expected: entry.sha256.clone(),
                        actual,
                    });
                }
            }
            Err(_) => findings.push(Finding::Missing {
                path: entry.path.clone(),
            }),
        }
    }
    let names: Vec<String> = zip
        .file_names()
        .map(|n| {
            n.map(|c| c.into_owned())
                .unwrap_or_else(|e| format!("(unreadable name: {e})"))
        })
        .collect();
    for n in names {
        if n != MANIFEST_NAME && !listed.contains(n.as_str()) {
            findings.push(Finding::Unexpected { path: n });
        }
    }
    Ok(Report {
        manifest,
        intact_files,
        findings,
    })
}
