//! The servers of the HttpSession tests, benchmarks and the Fetch demo: Debian's nginx (static
//! files, gzip, Range, HTTP/2 over TLS with the test CA, redirects), the aiohttp helper
//! (tests/helpers/http_server.py: streaming, server-sent events, faults, uploads echoed back) and
//! Debian's tinyproxy as a proxy with Basic auth. Each runs in the foreground with a
//! configuration written under `target/services/<name>/`, on free loopback ports.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::apt::Requirement;
use crate::paths;
use crate::services::{Service, find_program, free_port};

/// nginx, the static-file server (Debian's build has TLS, HTTP/2 and gzip).
pub const NGINX: Requirement = Requirement::program("nginx", "nginx");

/// tinyproxy, the HTTP proxy (CONNECT for https) with Basic auth.
pub const TINYPROXY: Requirement = Requirement::program("tinyproxy", "tinyproxy");

/// The aiohttp server of the tests and the demo.
pub const HTTP_SERVER_SCRIPT: &str = "tests/helpers/http_server.py";

/// The proxy's Basic-auth user.
pub const PROXY_USER: &str = "async-net";

/// The proxy's Basic-auth password.
pub const PROXY_PASSWORD: &str = "proxy-pw";

/// Size of `big.bin` in nginx's root: the 16 MiB download of the tests and benchmarks.
pub const BIG_FILE_BYTES: usize = 16 * 1024 * 1024;

/// The rate nginx sends each response under `/paced/` at (the files of its root): the soak's
/// downloads, slow enough that a kill lands mid-body. nginx logs those in [`Nginx::paced_log`].
pub const PACED_BYTES_PER_SEC: u64 = 1024 * 1024;

/// A running nginx.
pub struct Nginx {
    /// The process.
    pub service: Service,
    /// Its plain-http port.
    pub http_port: u16,
    /// Its https port (HTTP/2 and HTTP/1.1 through ALPN), when started with TLS.
    pub https_port: Option<u16>,
    /// The folder it serves.
    pub root: PathBuf,
}

/// Starts nginx on a free loopback port, serving the files [`write_root`] makes; with `tls`
/// (certificate and key, PEM), https too on a second port; with `icecast` (a port), that
/// icecast under `/icecast/` (RadioStream over https, and after a redirect from http).
pub fn start_nginx(name: &str, tls: Option<(&Path, &Path)>, icecast: Option<u16>) -> Result<Nginx> {
    launch_nginx(name, tls, icecast, free_port()?)
}

/// Starts nginx (plain http only) on 127.0.0.1:`port`: to restart a killed one where its
/// clients expect it.
pub fn start_nginx_on(name: &str, port: u16) -> Result<Nginx> {
    launch_nginx(name, None, None, port)
}

fn launch_nginx(name: &str, tls: Option<(&Path, &Path)>, icecast: Option<u16>, http_port: u16) -> Result<Nginx> {
    let program = find_program("nginx").context("nginx is not installed (Debian: `apt-get install nginx`)")?;
    let dir = paths::target_dir()?.join("services").join(name);
    let root = dir.join("www");
    write_root(&root)?;
    for temp in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        fs::create_dir_all(dir.join("temp").join(temp))?;
    }
    let https = match tls {
        Some((cert, key)) => {
            let mut port = free_port()?;
            while port == http_port {
                port = free_port()?;
            }
            Some(Https { port, cert, key })
        }
        None => None,
    };
    let config = dir.join("nginx.conf");
    fs::write(&config, nginx_config(&dir, &root, http_port, https.as_ref(), icecast))
        .with_context(|| format!("writing {}", config.display()))?;
    let mut cmd = Command::new(program);
    cmd.args(["-e", "stderr", "-p"]).arg(&dir).arg("-c").arg(&config);
    let mut service = Service::start(name, cmd)?;
    service.wait_for_port(http_port, Duration::from_secs(20))?;
    if let Some(https) = &https {
        service.wait_for_port(https.port, Duration::from_secs(20))?;
    }
    Ok(Nginx { service, http_port, https_port: https.map(|h| h.port), root })
}

impl Nginx {
    /// nginx's log of the responses under `/paced/`, one line each when it ends (so not those
    /// a kill of nginx cut short): `STATUS BODY_BYTES_SENT OK`, without `OK` when the client
    /// went before the end.
    pub fn paced_log(&self) -> PathBuf {
        self.root.with_file_name("paced.log")
    }
}

/// nginx's https listener.
struct Https<'a> {
    port: u16,
    cert: &'a Path,
    key: &'a Path,
}

/// nginx's configuration: one process in the foreground, logs on stderr, everything under `dir`.
fn nginx_config(dir: &Path, root: &Path, http: u16, https: Option<&Https>, icecast: Option<u16>) -> String {
    let temp = dir.join("temp");
    let temp = temp.display();
    let tls = https.map_or(String::new(), |h| {
        format!(
            "listen 127.0.0.1:{} ssl http2;\n    ssl_certificate {};\n    ssl_certificate_key {};\n    ",
            h.port,
            h.cert.display(),
            h.key.display()
        )
    });
    // icecast's streams unbuffered; `/to-https/PATH` sends a client to PATH on the https port
    // under another host name (localhost: the test certificate names it), so a redirect
    // changes scheme and host at once.
    let radio = icecast.map_or(String::new(), |port| {
        let upstream = format!(
            "location /icecast/ {{ proxy_pass http://127.0.0.1:{port}/; proxy_buffering off; proxy_read_timeout 60s; }}"
        );
        match https {
            Some(h) => {
                format!("{upstream}\n    location ~ ^/to-https(/.*)$ {{ return 302 https://localhost:{}$1; }}", h.port)
            }
            None => upstream,
        }
    });
    format!(
        "daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  log_format paced '$status $body_bytes_sent $request_completion';
  types {{ text/html html; text/plain txt; application/json json; application/octet-stream bin; }}
  default_type application/octet-stream;
  sendfile on;
  keepalive_requests 100000;
  gzip on;
  gzip_types text/plain application/json;
  gzip_min_length 64;
  server {{
    listen 127.0.0.1:{http};
    {tls}root {root};
    # The connection's serial number: requests multiplexed on one HTTP/2 connection share it.
    add_header X-Connection $connection always;
    location = /redirect {{ return 302 /small.json; }}
    location = /redirect-loop {{ return 302 /redirect-loop; }}
    location = /to-other-origin {{ return 302 http://127.0.0.1:{http}/authorization; }}
    location /paced/ {{ alias {root}/; limit_rate {PACED_BYTES_PER_SEC}; access_log {dir}/paced.log paced; }}
    location = /authorization {{ default_type text/plain; return 200 \"authorization=$http_authorization\"; }}
    {radio}
  }}
}}
",
        dir = dir.display(),
        root = root.display(),
    )
}

/// The files nginx serves: `small.json`, `text.txt` (compressible), `big.bin`
/// ([`BIG_FILE_BYTES`] of `i * 7 % 251`), `index.html`. Written once; kept while unchanged.
fn write_root(root: &Path) -> Result<()> {
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let items: Vec<String> = (0..3).map(|i| format!("{{\"id\":{i},\"name\":\"item {i}\"}}")).collect();
    let files: [(&str, Vec<u8>); 3] = [
        ("small.json", format!("{{\"items\":[{}]}}\n", items.join(",")).into_bytes()),
        ("text.txt", "The quick brown fox jumps over the lazy dog.\n".repeat(500).into_bytes()),
        ("index.html", b"<!doctype html><title>async-net test</title>\n".to_vec()),
    ];
    for (name, data) in files {
        fs::write(root.join(name), data).with_context(|| format!("writing {name}"))?;
    }
    let big = root.join("big.bin");
    if fs::metadata(&big).map(|m| m.len() as usize).ok() != Some(BIG_FILE_BYTES) {
        let data: Vec<u8> = (0..BIG_FILE_BYTES).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&big, data).with_context(|| format!("writing {}", big.display()))?;
    }
    Ok(())
}

/// Starts tinyproxy on a free loopback port, requiring [`PROXY_USER`] / [`PROXY_PASSWORD`].
pub fn start_tinyproxy(name: &str) -> Result<(Service, u16)> {
    let port = free_port()?;
    Ok((start_tinyproxy_on(name, port)?, port))
}

/// Starts tinyproxy on 127.0.0.1:`port` (to restart a killed one where its clients expect it).
pub fn start_tinyproxy_on(name: &str, port: u16) -> Result<Service> {
    let program =
        find_program("tinyproxy").context("tinyproxy is not installed (Debian: `apt-get install tinyproxy`)")?;
    let dir = paths::target_dir()?.join("services").join(name);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let config = dir.join("tinyproxy.conf");
    let text = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 100\nLogLevel Warning\n\
         BasicAuth {PROXY_USER} {PROXY_PASSWORD}\nAllow 127.0.0.1\nDisableViaHeader Yes\n"
    );
    fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    let mut cmd = Command::new(program);
    cmd.arg("-d").arg("-c").arg(&config);
    let mut service = Service::start(name, cmd)?;
    service.wait_for_port(port, Duration::from_secs(20))?;
    Ok(service)
}

/// The command that runs the aiohttp server ([`HTTP_SERVER_SCRIPT`]) on 127.0.0.1:`port`,
/// exiting when this process is gone.
pub fn http_server_command(python: &Path, port: u16) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(paths::root().join(HTTP_SERVER_SCRIPT)).args(["--port", &port.to_string()]);
    cmd.args(["--parent", &std::process::id().to_string()]);
    cmd
}

/// Starts the aiohttp server on a free port.
pub fn start_http_server(name: &str, python: &Path) -> Result<(Service, u16)> {
    let port = free_port()?;
    let mut service = Service::start(name, http_server_command(python, port))?;
    service.wait_for_port(port, Duration::from_secs(30))?;
    Ok((service, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_config_is_balanced_and_names_both_ports() {
        let https = Https { port: 8002, cert: Path::new("/c.pem"), key: Path::new("/k.pem") };
        let text = nginx_config(Path::new("/d"), Path::new("/d/www"), 8001, Some(&https), Some(8003));
        assert!(text.contains("listen 127.0.0.1:8001;") && text.contains("listen 127.0.0.1:8002 ssl http2;"));
        assert!(text.contains("ssl_certificate /c.pem;") && text.contains("ssl_certificate_key /k.pem;"));
        assert!(text.contains("return 302 http://127.0.0.1:8001/authorization;"));
        assert!(text.contains("proxy_pass http://127.0.0.1:8003/;"));
        assert!(text.contains("return 302 https://localhost:8002$1;"));
        assert!(
            text.contains("location /paced/ { alias /d/www/; limit_rate 1048576; access_log /d/paced.log paced; }")
        );
        assert_eq!(text.matches('{').count(), text.matches('}').count());
        let plain = nginx_config(Path::new("/d"), Path::new("/d/www"), 8001, None, None);
        assert!(!plain.contains("ssl") && plain.contains("listen 127.0.0.1:8001;"));
        assert!(!plain.contains("icecast") && !plain.contains("to-https"));
    }
}
