//! Release archives built by the tests themselves: a small ustar writer and
//! the system `gzip` (no dev-dependency), so each test controls every entry,
//! including unsafe ones.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    buf
}

/// One tar entry.
pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
}

pub fn octal(field: &mut [u8], value: u64) {
    let s = format!("{:0width$o}\0", value, width = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

pub fn tar_header(name: &str, mode: u32, size: u64, kind: u8, link: &str) -> [u8; 512] {
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "name too long: {name}"
    );
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_700_000_000);
    h[148..156].copy_from_slice(b"        ");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// A ustar archive of `entries`, names exactly as given (no sanitizing).
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        match e {
            Entry::Dir(name) => out.extend(tar_header(name, 0o755, 0, b'5', "")),
            Entry::Symlink(name, target) => out.extend(tar_header(name, 0o777, 0, b'2', target)),
            Entry::File(name, data, mode) => {
                out.extend(tar_header(name, *mode, data.len() as u64, b'0', ""));
                out.extend_from_slice(data);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// `gzip -n` of `data` (the system gzip: no dev-dependency needed).
pub fn gzip(data: Vec<u8>) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .args(["-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gzip");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "gzip failed");
    out.stdout
}

pub fn tar_gz(entries: &[Entry]) -> Vec<u8> {
    gzip(tar(entries))
}

pub fn hello_script(version: &str) -> String {
    format!("#!/bin/sh\necho hello {version}\n")
}

/// The release tarball of `version`: bin/hello, VERSION, and `blob` random
/// bytes in blob.bin (incompressible) when `blob > 0`.
pub fn release_tar_gz(version: &str, blob: usize) -> Vec<u8> {
    let script = hello_script(version);
    let version_file = format!("{version}\n");
    let random = random_bytes(blob);
    let mut entries = vec![
        Entry::Dir("bin/"),
        Entry::File("bin/hello", script.as_bytes(), 0o755),
        Entry::File("VERSION", version_file.as_bytes(), 0o644),
    ];
    if blob > 0 {
        entries.push(Entry::File("blob.bin", &random, 0o644));
    }
    tar_gz(&entries)
}
