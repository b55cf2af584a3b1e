//! The slug store: storing, verified reads, idempotent unpacks, concurrency, gc and its config.

use super::*;

#[test]
fn store_dir_twice_keeps_one_file() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    let a = store.store_dir(t.path()).expect("store dir");
    let b = store.store_dir(t.path()).expect("store dir");
    assert_eq!(a, b);
    assert_eq!(a.digest, digest_of(t.path()));
    assert!(store.contains(&a.digest));
    assert_eq!(store.size(&a.digest).expect("size"), a.size);
    assert_eq!(store.list().expect("list"), vec![a.digest]);
    let hex = a.digest.to_hex();
    assert_eq!(
        store.path(&a.digest),
        store
            .root()
            .join("sha256")
            .join(&hex[..2])
            .join(format!("{hex}.tar.gz"))
    );
    assert_eq!(
        count_files(store.path(&a.digest).parent().expect("parent")),
        1
    );
    assert_eq!(count_files(&store.root().join("tmp")), 0);
    let bytes = fs::read(store.path(&a.digest)).expect("read");
    assert_eq!(bytes, pack_to_vec(t.path()).0);
}

#[test]
fn store_reader_verifies_checksum_and_size() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    let (bytes, stats) = pack_to_vec(t.path());

    let wrong = SlugDigest::from_bytes([7; 32]);
    let err = store
        .store_reader(&bytes[..], Some(wrong))
        .expect_err("store reader should fail");
    assert!(matches!(err, SlugError::ChecksumMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&wrong.to_hex()) && msg.contains(&stats.digest.to_hex()),
        "{msg}"
    );
    assert_eq!(count_files(&store.root().join("tmp")), 0);
    assert!(store.list().expect("list").is_empty());

    let small = SlugStore::open(
        store.root(),
        SlugStoreConfig {
            max_slug_bytes: 1000,
            ..SlugStoreConfig::default()
        },
    )
    .expect("open store");
    // An endless upload stops right after the limit.
    let err = small
        .store_reader(io::repeat(1), None)
        .expect_err("store reader should fail");
    assert!(matches!(err, SlugError::TooLarge { limit: 1000 }), "{err}");
    assert_eq!(count_files(&store.root().join("tmp")), 0);
    // So does a built tree that packs larger than the limit.
    let big = tempfile::tempdir().expect("tempdir");
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(big.path().join("blob"), noise).expect("write");
    let err = small
        .store_dir(big.path())
        .expect_err("store dir should fail");
    assert!(matches!(err, SlugError::TooLarge { limit: 1000 }), "{err}");
    assert_eq!(count_files(&store.root().join("tmp")), 0);

    let ok = store
        .store_reader(&bytes[..], Some(stats.digest))
        .expect("store reader");
    assert_eq!(
        ok,
        StoredSlug {
            digest: stats.digest,
            size: bytes.len() as u64
        }
    );
    assert_eq!(
        store.store_reader(&bytes[..], None).expect("store reader"),
        ok
    );
    assert_eq!(count_files(&store.root().join("tmp")), 0);
}

#[test]
fn unpack_is_idempotent_and_read_only() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    fs::write(t.path().join("secret"), "app-only").expect("write");
    fs::set_permissions(t.path().join("secret"), fs::Permissions::from_mode(0o600))
        .expect("set permissions");
    let s = store.store_dir(t.path()).expect("store dir");
    let p1 = store.unpack(&s.digest).expect("unpack");
    let p2 = store.unpack(&s.digest).expect("unpack");
    assert_eq!(p1, p2);
    assert_eq!(p1, store.unpacked_path(&s.digest));
    assert_eq!(
        fs::read_to_string(p1.join("Procfile")).expect("read to string"),
        "web: bin/web\n"
    );
    assert_eq!(mode_of(&p1), 0o777);
    assert_eq!(mode_of(&p1.join("lib/deep/er")), 0o777);
    assert_eq!(mode_of(&p1.join("bin/web")), 0o777);
    assert_eq!(mode_of(&p1.join("lib/suid")), 0o777, "setuid is never kept");
    assert_eq!(mode_of(&p1.join("Procfile")), 0o666);
    assert_eq!(mode_of(&p1.join("secret")), 0o666);
    assert_eq!(
        mode_of(&store.root().join("unpacked")),
        0o700,
        "only root reaches the shared trees"
    );
    assert_eq!(
        fs::read_link(p1.join("lib/web")).expect("read link"),
        Path::new("../bin/web")
    );
    let names: Vec<_> = fs::read_dir(store.root().join("unpacked"))
        .expect("read_dir")
        .collect();
    assert_eq!(names.len(), 1, "no temp dirs left");
}

#[test]
fn unpack_refuses_a_corrupted_or_hostile_slug_leaving_nothing() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    let s = store.store_dir(t.path()).expect("store dir");
    let path = store.path(&s.digest);
    let mut bytes = fs::read(&path).expect("read");
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs::write(&path, &bytes).expect("write");
    let err = store.unpack(&s.digest).expect_err("unpack should fail");
    assert!(matches!(err, SlugError::Corrupted { .. }), "{err}");
    assert_eq!(count_files(&store.root().join("unpacked")), 0);

    let hostile = tgz(&[
        dir("bin"),
        file("bin/ok", "fine"),
        sym("x", "/etc"),
        file("later", ""),
    ]);
    let h = store
        .store_reader(&hostile[..], None)
        .expect("store reader");
    let err = store.unpack(&h.digest).expect_err("unpack should fail");
    assert!(matches!(err, SlugError::Refused { .. }), "{err}");
    assert_eq!(count_files(&store.root().join("unpacked")), 0);

    let missing = SlugDigest::from_bytes([1; 32]);
    assert!(matches!(
        store.unpack(&missing),
        Err(SlugError::NotFound { .. })
    ));
}

#[test]
fn concurrent_unpacks_of_one_slug_agree() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    for i in 0..200 {
        fs::write(t.path().join(format!("lib/f{i}")), format!("{i}")).expect("write");
    }
    let s = store.store_dir(t.path()).expect("store dir");
    let paths: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| store.unpack(&s.digest).expect("unpack")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(paths.iter().all(|p| *p == store.unpacked_path(&s.digest)));
    assert_eq!(
        fs::read_to_string(paths[0].join("lib/f199")).expect("read to string"),
        "199"
    );
    assert_eq!(count_files(&store.root().join("unpacked")), 1);
}

#[test]
fn gc_keeps_live_slugs_and_removes_the_rest() {
    let (_d, store) = store();
    let t = tempfile::tempdir().expect("tempdir");
    sample_tree(t.path());
    let live = store.store_dir(t.path()).expect("store dir");
    fs::write(t.path().join("Procfile"), "web: other\n").expect("write");
    let dead = store.store_dir(t.path()).expect("store dir");
    let dead2 = store
        .store_reader(&tgz(&[file("x", "y")])[..], None)
        .expect("store_reader");
    store.unpack(&live.digest).expect("unpack");
    store.unpack(&dead.digest).expect("unpack");

    // Debris: an old temp upload and an old half-done unpack go; a fresh
    // temp file (an upload in progress) stays.
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    let stale = store.root().join("tmp/upload-stale");
    fs::write(&stale, "partial").expect("write");
    fs::File::options()
        .write(true)
        .open(&stale)
        .expect("open")
        .set_modified(old)
        .expect("set_modified");
    let fresh = store.root().join("tmp/upload-fresh");
    fs::write(&fresh, "partial").expect("write");
    let stale_unpack = store.root().join("unpacked/.tmp-abc-1");
    fs::create_dir_all(stale_unpack.join("d")).expect("create dir all");
    fs::set_permissions(stale_unpack.join("d"), fs::Permissions::from_mode(0o555))
        .expect("set permissions");
    let f = fs::File::open(&stale_unpack).expect("open");
    f.set_modified(old).expect("set modified");

    let report = store.gc(&HashSet::from([live.digest])).expect("gc");
    let mut expect = vec![dead.digest, dead2.digest];
    expect.sort();
    assert_eq!(report.removed, expect);
    assert!(report.freed_bytes >= dead.size + dead2.size + 5000);
    assert!(store.contains(&live.digest));
    assert!(!store.contains(&dead.digest));
    assert!(store.unpacked_path(&live.digest).is_dir());
    assert!(!store.unpacked_path(&dead.digest).exists());
    assert!(!stale.exists() && fresh.exists() && !stale_unpack.exists());
    assert_eq!(store.list().expect("list"), vec![live.digest]);

    // Nothing left to do the second time.
    assert_eq!(
        store.gc(&HashSet::from([live.digest])).expect("gc"),
        GcReport::default()
    );
}

#[test]
fn config_defaults_and_validation() {
    let c: SlugStoreConfig = toml::from_str("").expect("from str");
    assert_eq!(c, SlugStoreConfig::default());
    assert_eq!(c.compression_level, 6);
    let c: SlugStoreConfig =
        toml::from_str("max-entries = 10\ncompression-level = 1").expect("from str");
    assert_eq!((c.max_entries, c.compression_level), (10, 1));
    assert!(toml::from_str::<SlugStoreConfig>("max_entries = 10").is_err());
    let bad = SlugStoreConfig {
        compression_level: 10,
        ..SlugStoreConfig::default()
    };
    assert!(bad.validate().is_err());
    assert!(SlugStore::open(tempfile::tempdir().expect("tempdir").path(), bad).is_err());
}
