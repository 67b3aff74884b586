//! `--tls`: every mode inside TLS, the generated certificate, trust on first use, a CA,
//! and clients that do not speak TLS at all.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::{PATIENCE, Server, netlab, run_with_input};

/// A scratch home for one test: the server's data (certificate, log, database) and the
/// client's state (known_hosts, tokens).
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn known_hosts(&self) -> PathBuf {
        self.dir
            .path()
            .join("state")
            .join("netlab")
            .join("known_hosts")
    }

    /// `netlab serve MODE --tls ...` with this home's data; returns the server and the
    /// fingerprint it printed.
    fn serve(&self, args: &[&str]) -> (Server, String) {
        let mut cmd = netlab();
        cmd.arg("serve")
            .args(args)
            .args(["--tls", "--port", "0"])
            .env("XDG_DATA_HOME", self.data());
        if args[0] == "auth" {
            cmd.args(["--scrypt-log-n", "10"]);
        }
        let mut server = Server::start_command(cmd);
        let line = server.next_line();
        let fingerprint = line
            .strip_prefix("tls certificate ")
            .unwrap_or_else(|| panic!("second line: {line:?}"))
            .to_owned();
        (server, fingerprint)
    }

    /// `netlab connect --tls` to `server`, trusting on first use with this home's
    /// known_hosts, `input` on stdin.
    fn connect(&self, server: &Server, extra: &[&str], input: &str) -> Output {
        let mut cmd = netlab();
        cmd.args(["connect", "--tls", "--port", &server.port()])
            .args(extra)
            .arg("--known-hosts")
            .arg(self.known_hosts())
            .env("XDG_STATE_HOME", self.dir.path().join("state"));
        run_with_input(cmd, input)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_mode_and_codec_speaks_inside_tls() {
    let home = Home::new();
    for (args, extra, input, expect) in [
        (&["echo"][..], &[][..], "привет\n", "\nпривет\n"),
        (
            &["echo", "--codec", "lines"][..],
            &["--codec", "lines"][..],
            "hi\n",
            "\nhi\n",
        ),
        (
            &["echo", "--codec", "raw"][..],
            &["--codec", "raw"][..],
            "raw bytes\n",
            "raw bytes\n",
        ),
        (&["ident"][..], &[][..], "Tess\n", "Nice to meet you, Tess!"),
        (
            &["auth"][..],
            &[][..],
            "tess\npassword-1\npassword-1\n/whoami\n",
            "You are tess",
        ),
    ] {
        let (server, _) = home.serve(args);
        let out = home.connect(&server, extra, input);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains(expect),
            "{args:?}: {}",
            text(&out.stdout)
        );
        let log = server.wait_for_log(": closed after");
        assert!(!log.contains("WARN"), "{args:?}: {log}");
    }
}

#[test]
fn the_generated_certificate_is_kept_privately_and_survives_a_restart() {
    let home = Home::new();
    let (server, first) = home.serve(&["echo"]);
    assert!(first.starts_with("sha256:") && first.len() == 71, "{first}");
    server.terminate();
    drop(server);
    let (_server, again) = home.serve(&["echo"]);
    assert_eq!(first, again);
    let tls = home.data().join("netlab").join("tls");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&tls), 0o700);
    assert_eq!(mode(&tls.join("key.pem")), 0o600);
    let out = netlab()
        .args(["tls", "fingerprint"])
        .env("XDG_DATA_HOME", home.data())
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), format!("{first}\n"));

    // A key others can read is refused at start-up.
    fs::set_permissions(tls.join("key.pem"), fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = netlab();
    cmd.args(["serve", "echo", "--tls", "--port", "0"])
        .env("XDG_DATA_HOME", home.data());
    let out = run_with_input(cmd, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the TLS key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn first_use_records_the_certificate_and_a_changed_one_is_refused_before_anything_is_sent() {
    let home = Home::new();
    let (server, fingerprint) = home.serve(&["auth"]);
    let first = home.connect(&server, &[], "rosa\npassword-1\npassword-1\n");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert!(
        text(&first.stderr).contains(&format!("its certificate {fingerprint} is now trusted")),
        "{}",
        text(&first.stderr)
    );
    let recorded = fs::read_to_string(home.known_hosts()).unwrap();
    assert_eq!(
        recorded,
        format!("127.0.0.1:{} {fingerprint}\n", server.port())
    );
    assert_eq!(
        fs::metadata(home.known_hosts())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // The same certificate: nothing said.
    let second = home.connect(&server, &[], "/whoami\n");
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(text(&second.stderr), "");

    // A renewed certificate on the same address: refused, loudly, and nothing sent.
    server.terminate();
    let port = server.port();
    drop(server);
    let renewed = netlab()
        .args(["tls", "renew"])
        .env("XDG_DATA_HOME", home.data())
        .output()
        .unwrap();
    assert!(renewed.status.success());
    let mut cmd = netlab();
    cmd.args([
        "serve",
        "auth",
        "--tls",
        "--port",
        &port,
        "--port-retries",
        "0",
    ])
    .env("XDG_DATA_HOME", home.data());
    let mut server = Server::start_command(cmd);
    let new = server.next_line().replace("tls certificate ", "");
    assert_ne!(new, fingerprint);
    let third = home.connect(&server, &[], "rosa\npassword-1\n/whoami\n");
    assert_eq!(third.status.code(), Some(1));
    let stderr = text(&third.stderr);
    assert!(
        stderr.contains("HAS CHANGED")
            && stderr.contains(&fingerprint)
            && stderr.contains(&new)
            && stderr.contains(&format!(
                "delete line 1 of {}",
                home.known_hosts().display()
            )),
        "{stderr}"
    );
    assert_eq!(text(&third.stdout), "", "not even the greeting is shown");
    let started = Instant::now();
    let since_restart = loop {
        let log = server.log();
        let tail = log
            .rsplit(" listening on ")
            .next()
            .unwrap_or_default()
            .to_owned();
        if tail.contains(": closed after") {
            break tail;
        }
        assert!(started.elapsed() < PATIENCE, "no connection logged:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        since_restart.contains("; 0 messages in, "),
        "the password never left:\n{since_restart}"
    );
}

#[test]
fn a_pin_accepts_only_its_certificate() {
    let home = Home::new();
    let (server, fingerprint) = home.serve(&["echo"]);
    let good = home.connect(&server, &["--tls-pin", &fingerprint], "x\n");
    assert_eq!(good.status.code(), Some(0), "{}", text(&good.stderr));
    assert!(!home.known_hosts().exists(), "a pin records nothing");
    let other = format!("sha256:{}", "ab".repeat(32));
    let bad = home.connect(&server, &["--tls-pin", &other], "x\n");
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains(&format!("not the pinned {other}")),
        "{}",
        text(&bad.stderr)
    );
}

/// A CA made here, a certificate it signed for `localhost`, and a CA that signed nothing.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(not_after: Option<(i32, u8, u8)>) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, &ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        if let Some((y, m, d)) = not_after {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(y, m, d);
        }
        let cert = params.signed_by(&key, &issuer).unwrap();
        let other_key = KeyPair::generate().unwrap();
        let other = CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&other_key)
            .unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            fs::write(&path, pem).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        };
        write("ca.pem", ca.pem());
        write("cert.pem", cert.pem());
        write("key.pem", key.serialize_pem());
        write("other-ca.pem", other.pem());
        write("other-key.pem", other_key.serialize_pem());
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[test]
fn a_certificate_from_a_ca_is_verified_with_its_name() {
    let pki = Pki::new(None);
    let home = Home::new();
    let mut cmd = netlab();
    cmd.args(["serve", "echo", "--tls", "--port", "0"])
        .args([
            "--tls-cert",
            &pki.path("cert.pem"),
            "--tls-key",
            &pki.path("key.pem"),
        ])
        .env("XDG_DATA_HOME", home.data());
    let server = Server::start_command(cmd);
    let trusted = home.connect(
        &server,
        &["--host", "localhost", "--tls-ca", &pki.path("ca.pem")],
        "ok\n",
    );
    assert_eq!(trusted.status.code(), Some(0), "{}", text(&trusted.stderr));
    assert!(text(&trusted.stdout).ends_with("\nok\n"));
    assert!(!home.known_hosts().exists(), "a CA records nothing");

    // Another CA, or another name than the certificate's: refused.
    for extra in [
        &["--host", "localhost", "--tls-ca", &pki.path("other-ca.pem")][..],
        &["--host", "127.0.0.1", "--tls-ca", &pki.path("ca.pem")][..],
    ] {
        let refused = home.connect(&server, extra, "no\n");
        assert_eq!(refused.status.code(), Some(1), "{extra:?}");
        let stderr = text(&refused.stderr);
        assert!(
            stderr.starts_with("netlab: TLS with "),
            "{extra:?}: {stderr}"
        );
        assert!(stderr.contains("certificate"), "{extra:?}: {stderr}");
    }
}

#[test]
fn bad_certificates_and_keys_stop_the_server_at_start_up() {
    let pki = Pki::new(None);
    let expired = Pki::new(Some((2001, 1, 1)));
    let garbage = pki.dir.path().join("garbage.pem");
    fs::write(&garbage, "not a certificate\n").unwrap();
    for (cert, key, reason) in [
        (
            pki.path("cert.pem"),
            pki.path("other-key.pem"),
            "does not go with the certificate",
        ),
        (
            garbage.display().to_string(),
            pki.path("key.pem"),
            "holds no PEM certificate",
        ),
        (
            expired.path("cert.pem"),
            expired.path("key.pem"),
            "expired on",
        ),
    ] {
        let out = netlab()
            .args([
                "serve",
                "echo",
                "--tls",
                "--port",
                "0",
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
            ])
            .env("XDG_DATA_HOME", pki.dir.path().join("data"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{reason}");
        let stderr = text(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("netlab: ") && last.contains(reason),
            "{reason}: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "never listening: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn plain_text_and_silence_on_a_tls_port_are_logged_and_closed() {
    let home = Home::new();
    let (server, _) = home.serve(&["echo", "--frame-timeout", "1s"]);

    let mut plain = server.connect();
    plain.write_all(b"hello, plain text\n").unwrap();
    plain.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = plain.read_to_end(&mut Vec::new());
    server.wait_for_log("TLS handshake failed");

    let started = Instant::now();
    let mut silent = server.connect();
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = silent.read_to_end(&mut Vec::new());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < PATIENCE,
        "{took:?}"
    );
    let log = server.wait_for_log("no TLS handshake within 1s");

    // And a TLS client after both is served as usual.
    let out = home.connect(&server, &[], "still here\n");
    assert_eq!(out.status.code(), Some(0), "{}\n{log}", text(&out.stderr));
}

#[test]
fn a_plain_client_at_a_tls_port_is_told_to_try_tls_and_a_tls_client_at_a_plain_port_is_told_the_reverse()
 {
    let home = Home::new();
    let (tls_server, _) = home.serve(&["echo"]);
    let mut cmd = netlab();
    cmd.args([
        "connect",
        "--port",
        &tls_server.port(),
        "--greeting-timeout",
        "300ms",
    ]);
    let out = run_with_input(cmd, "x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--tls"), "{}", text(&out.stderr));

    let plain = Server::start(&["echo"]);
    let out = home.connect(&plain, &[], "x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does the server speak TLS? try without --tls"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_token_won_over_tls_is_never_offered_over_plain_tcp() {
    let home = Home::new();
    let (server, _) = home.serve(&["auth"]);
    let first = home.connect(&server, &[], "uma\npassword-1\npassword-1\n");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let tokens = fs::read_to_string(home.dir.path().join("state/netlab/tokens")).unwrap();
    assert!(
        tokens.starts_with(&format!("tls://127.0.0.1:{} ", server.port())),
        "{tokens}"
    );
    // Over TLS the token signs in.
    let again = home.connect(&server, &[], "/whoami\n");
    assert!(text(&again.stdout).contains("signed in with a session token"));
    // The same server without TLS, at the same address: the client has no token for
    // it, so it sends none in clear, and the user is asked to sign in.
    let port = server.port();
    server.terminate();
    drop(server);
    let mut cmd = netlab();
    cmd.args([
        "serve",
        "auth",
        "--port",
        &port,
        "--port-retries",
        "0",
        "--scrypt-log-n",
        "10",
    ])
    .env("XDG_DATA_HOME", home.data());
    let plain = Server::start_command(cmd);
    let mut cmd = netlab();
    cmd.args(["connect", "--port", &plain.port()])
        .env("XDG_STATE_HOME", home.dir.path().join("state"));
    let out = run_with_input(cmd, "/whoami\n");
    let shown = text(&out.stdout);
    assert!(
        !shown.contains("Welcome back"),
        "signed in by a token sent in clear:\n{shown}"
    );
    assert!(shown.contains("Username:"), "{shown}");
}

#[test]
fn auth_on_a_network_address_without_tls_is_warned_about() {
    let home = Home::new();
    let mut cmd = netlab();
    cmd.args(["serve", "auth", "--host", "0.0.0.0", "--port", "0"])
        .arg("--db")
        .arg(home.dir.path().join("netlab.db"))
        .env("XDG_DATA_HOME", home.data());
    let server = Server::start_command(cmd);
    let warning = "listening on 0.0.0.0 without --tls: passwords and session tokens will \
                   cross the network in clear";
    assert!(
        server
            .stderr()
            .contains(&format!("netlab: warning: {warning}")),
        "{}",
        server.stderr()
    );
    assert!(server.log().contains(warning), "{}", server.log());

    // On loopback, or with TLS, nothing to warn about.
    let (tls, _) = home.serve(&["auth"]);
    assert!(!tls.stderr().contains("warning"), "{}", tls.stderr());
}

#[test]
fn an_unfinished_handshake_holds_its_addresss_place() {
    let home = Home::new();
    let (server, _) = home.serve(&["echo", "--max-per-address", "1"]);
    let _silent = server.connect(); // no ClientHello: the handshake never starts
    server.wait_for_log(": connected");
    let refused = home.connect(&server, &[], "x\n");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let shown = text(&refused.stdout) + &text(&refused.stderr);
    // Told inside TLS, so the client can read why.
    assert!(
        shown.contains("too many connections from your address"),
        "{shown}"
    );
}
