//! The recordings' file format, on its own: Matroska files holding MJPEG
//! frames exactly as received, each at its capture time. `mux` writes them
//! cluster by cluster, `scan` reads them back (an index of every frame) and
//! repairs the tail a crash left. Plain blocking file I/O: no async, no catalog, no
//! decision about where files go or when they rotate.

pub mod ebml;
pub mod mux;
pub mod scan;
