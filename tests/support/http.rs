//! A bare HTTP/1.1 server on a loopback address, for URL sources: each
//! request's path gets the reply a test makes for it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

/// Serves on `ip`, a free port, until the process ends: `answer` gets each
/// request's path and returns the whole reply ([`reply`] makes one).
pub fn serve(ip: &str, answer: impl Fn(&str) -> Vec<u8> + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).expect("binding a test HTTP server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&request);
            let path = head.split(' ').nth(1).unwrap_or("/");
            let _ = stream.write_all(&answer(path));
        }
    });
    addr
}

/// A reply with `status` (`"200 OK"`), extra header lines and `body`.
pub fn reply(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        r.push_str(&format!("{name}: {value}\r\n"));
    }
    r.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}
