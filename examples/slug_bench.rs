//! Benchmark: slug pack and unpack against GNU tar + gzip on an app-like tree (run by `bench/slug/run.sh`).
//!
//! Usage: `cargo run --release --example slug_bench -- [REPS] [WORK_DIR]`
//! (defaults 5 and `target/slug-bench`). Prints per-run times, medians and
//! the ratios ours/GNU; below 1.0 means Corral is faster. On a disk, the
//! unpack times are dominated by the filesystem and vary run to run; a
//! tmpfs `WORK_DIR` (e.g. `/dev/shm/slug-bench`) measures the CPU side.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use corral::slug::{pack, unpack_archive, SlugStore, SlugStoreConfig, UnpackLimits};

const LEVEL: u32 = 6;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slug_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let reps: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let work = PathBuf::from(args.next().unwrap_or_else(|| "target/slug-bench".into()));
    if work.exists() {
        remove(&work)?;
    }
    let tree = work.join("tree");
    let (files, bytes) = generate(&tree)?;
    println!(
        "tree: {files} files, {:.1} MB, gzip level {LEVEL}, {reps} runs each, in one order on odd runs and the reverse on even ones",
        bytes as f64 / 1e6
    );

    let ours_tgz = work.join("ours.tar.gz");
    let gnu_tgz = work.join("gnu.tar.gz");
    let mut t = Times::default();
    for rep in 0..reps {
        // Ours, as the daemon does it: pack into a fresh store (temp file,
        // hash while writing, fsync, rename). Its archive is what both
        // unpacks read; packing is deterministic, so on the reps where
        // this runs last they read the same bytes from the rep before.
        let store_dir = || -> Result<f64, Box<dyn std::error::Error>> {
            let store_root = work.join(format!("store-{rep}"));
            let store = SlugStore::open(&store_root, SlugStoreConfig::default())?;
            settle()?;
            let start = Instant::now();
            let stored = store.store_dir(&tree)?;
            let secs = start.elapsed().as_secs_f64();
            fs::copy(store.path(&stored.digest), &ours_tgz)?;
            remove(&store_root)?;
            Ok(secs)
        };
        // Ours packing alone into a file, and GNU tar.
        let ours_pack = || -> Result<f64, Box<dyn std::error::Error>> {
            settle()?;
            let start = Instant::now();
            let out = BufWriter::new(File::create(work.join("pack-only.tar.gz"))?);
            pack(&tree, out, LEVEL)?;
            Ok(start.elapsed().as_secs_f64())
        };
        let gnu_pack = || -> Result<f64, Box<dyn std::error::Error>> {
            settle()?;
            let start = Instant::now();
            gnu(Command::new("tar")
                .arg("-C")
                .arg(&tree)
                .args(["-I", &format!("gzip -{LEVEL}"), "-cf"])
                .arg(&gnu_tgz)
                .arg("."))?;
            Ok(start.elapsed().as_secs_f64())
        };
        // Both unpack the same archive (ours) into a fresh directory.
        let ours_unpack = || -> Result<f64, Box<dyn std::error::Error>> {
            let dest = work.join("dest-ours");
            fs::create_dir(&dest)?;
            settle()?;
            let start = Instant::now();
            unpack_archive(File::open(&ours_tgz)?, &dest, &UnpackLimits::default())?;
            let secs = start.elapsed().as_secs_f64();
            remove(&dest)?;
            Ok(secs)
        };
        let gnu_unpack = || -> Result<f64, Box<dyn std::error::Error>> {
            let dest = work.join("dest-gnu");
            fs::create_dir(&dest)?;
            settle()?;
            let start = Instant::now();
            gnu(Command::new("tar")
                .arg("-C")
                .arg(&dest)
                .args(["-I", "gzip", "-xf"])
                .arg(&ours_tgz))?;
            let secs = start.elapsed().as_secs_f64();
            remove(&dest)?;
            Ok(secs)
        };
        // In one order on even reps and the reverse on odd ones, so that
        // neither side always runs first (on a cold cache, or right after
        // the other's disk traffic).
        let mut steps = [
            Step::StoreDir,
            Step::Pack,
            Step::GnuPack,
            Step::Unpack,
            Step::GnuUnpack,
        ];
        if rep % 2 == 1 {
            steps.reverse();
        }
        for step in steps {
            match step {
                Step::StoreDir => t.store_dir.push(store_dir()?),
                Step::Pack => t.pack.push(ours_pack()?),
                Step::GnuPack => t.gnu_pack.push(gnu_pack()?),
                Step::Unpack => t.unpack.push(ours_unpack()?),
                Step::GnuUnpack => t.gnu_unpack.push(gnu_unpack()?),
            }
        }

        println!(
            "run {}: store_dir {:.3}s  pack {:.3}s  gnu pack {:.3}s  |  unpack {:.3}s  gnu unpack {:.3}s",
            rep + 1,
            t.store_dir[rep],
            t.pack[rep],
            t.gnu_pack[rep],
            t.unpack[rep],
            t.gnu_unpack[rep]
        );
    }
    let ours_size = fs::metadata(&ours_tgz)?.len();
    let gnu_size = fs::metadata(&gnu_tgz)?.len();
    let m = |v: &[f64]| median(v);
    println!();
    println!(
        "archive size: ours {:.1} MB, GNU {:.1} MB",
        ours_size as f64 / 1e6,
        gnu_size as f64 / 1e6
    );
    println!(
        "median pack:   store_dir {:.3}s, pack {:.3}s, GNU tar czf {:.3}s",
        m(&t.store_dir),
        m(&t.pack),
        m(&t.gnu_pack)
    );
    println!(
        "median unpack: unpack_archive {:.3}s, GNU tar xzf {:.3}s",
        m(&t.unpack),
        m(&t.gnu_unpack)
    );
    println!(
        "ratio pack (store_dir/GNU): {:.2}",
        m(&t.store_dir) / m(&t.gnu_pack)
    );
    println!("ratio pack (pack/GNU): {:.2}", m(&t.pack) / m(&t.gnu_pack));
    println!(
        "ratio unpack (unpack_archive/GNU): {:.2}",
        m(&t.unpack) / m(&t.gnu_unpack)
    );
    remove(&work)?;
    Ok(())
}

/// One timed measurement of a rep.
#[derive(Clone, Copy)]
enum Step {
    StoreDir,
    Pack,
    GnuPack,
    Unpack,
    GnuUnpack,
}

#[derive(Default)]
struct Times {
    store_dir: Vec<f64>,
    pack: Vec<f64>,
    gnu_pack: Vec<f64>,
    unpack: Vec<f64>,
    gnu_unpack: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Flushes dirty pages left by the previous step, so that its writeback
/// is not charged to the next one (the disk is the noisiest part here).
fn settle() -> io::Result<()> {
    gnu(&mut Command::new("sync"))
}

fn gnu(cmd: &mut Command) -> io::Result<()> {
    let status = cmd.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{cmd:?} failed: {status}")))
    }
}

/// Removes a tree, including the read-only ones the store leaves.
fn remove(path: &Path) -> io::Result<()> {
    gnu(Command::new("chmod").args(["-R", "u+w"]).arg(path))?;
    fs::remove_dir_all(path)
}

/// A deterministic xorshift generator: the same tree on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes an app-like tree: 5,000 source-like files (200 B - 8 KB) in
/// nested directories, 2 x 20 MB semi-compressible blobs, a 15 MB
/// incompressible one (a `.so` or `.jar`) and a 15 MB repetitive text bundle.
/// Returns (files, bytes).
fn generate(root: &Path) -> io::Result<(u64, u64)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let words: Vec<String> = (0..600)
        .map(|_| {
            let len = 2 + rng.below(10) as usize;
            (0..len)
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect()
        })
        .collect();
    let keywords = [
        "fn", "let", "return", "if", "else", "for", "import", "def", "class", "const", "=>", "{",
        "}", "(", ")", ";",
    ];
    let mut files = 0u64;
    let mut bytes = 0u64;
    for i in 0..5000u64 {
        let dir = root.join(format!(
            "{}/pkg{}/{}/m{}",
            ["app", "lib", "node_modules", "vendor"][(i % 4) as usize],
            i % 50,
            ["src", "lib", "dist"][(i % 3) as usize],
            i % 7
        ));
        fs::create_dir_all(&dir)?;
        let size = 200 + rng.below(8000) as usize;
        let mut text = String::with_capacity(size + 100);
        while text.len() < size {
            let indent = rng.below(4) as usize * 4;
            text.extend(std::iter::repeat_n(' ', indent));
            for _ in 0..(3 + rng.below(8)) {
                if rng.below(3) == 0 {
                    text.push_str(keywords[rng.below(keywords.len() as u64) as usize]);
                } else if rng.below(10) == 0 {
                    text.push_str(&rng.below(100_000).to_string());
                } else {
                    text.push_str(&words[rng.below(words.len() as u64) as usize]);
                }
                text.push(' ');
            }
            text.push('\n');
        }
        text.truncate(size);
        fs::write(dir.join(format!("file{i}.src")), &text)?;
        files += 1;
        bytes += size as u64;
    }
    fs::create_dir_all(root.join("bin"))?;
    for n in 0..2 {
        let path = root.join(format!("bin/blob{n}.dat"));
        bytes += write_blob(&path, 20 << 20, &mut rng, Blob::Semi)?;
        files += 1;
    }
    bytes += write_blob(
        &root.join("bin/native.so"),
        15 << 20,
        &mut rng,
        Blob::Random,
    )?;
    bytes += write_blob(
        &root.join("bin/bundle.js"),
        15 << 20,
        &mut rng,
        Blob::Text(&words),
    )?;
    files += 2;
    Ok((files, bytes))
}

enum Blob<'a> {
    /// Half repeated earlier blocks, half 6-bit random: compresses ~2:1.
    Semi,
    /// Incompressible.
    Random,
    /// Words: compresses ~3-4:1.
    Text(&'a [String]),
}

fn write_blob(path: &Path, size: usize, rng: &mut Rng, kind: Blob<'_>) -> io::Result<u64> {
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        match &kind {
            Blob::Semi if data.len() > 4096 && rng.below(2) == 0 => {
                let from = rng.below((data.len() - 64) as u64) as usize;
                let block: Vec<u8> = data[from..from + 64].to_vec();
                data.extend_from_slice(&block);
            }
            Blob::Semi => data.extend((0..64).map(|_| b'0' + rng.below(64) as u8)),
            Blob::Random => data.extend(rng.next().to_le_bytes()),
            Blob::Text(words) => {
                data.extend_from_slice(words[rng.below(words.len() as u64) as usize].as_bytes());
                data.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
            }
        }
    }
    data.truncate(size);
    let mut f = File::create(path)?;
    f.write_all(&data)?;
    Ok(size as u64)
}
