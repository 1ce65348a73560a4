//! Results and their forms: the suites' results and summary (`report`), the parsers of what
//! kernels and cargo print (`ktap`, `libtest`), and the files CI systems read (`junit`,
//! `kcidb`).

pub mod junit;
pub mod kcidb;
pub mod ktap;
pub mod libtest;
pub mod report;
