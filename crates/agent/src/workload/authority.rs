//! Interoperability with gRPC's C core (the Python `spiffe` package, and every grpcio,
//! Ruby, PHP or C++ client) over the unix socket.
//!
//! Since gRPC 1.57, C-core clients send the socket's path, percent-encoded, as the HTTP/2
//! `:authority` (`tmp%2Fagent%2Fapi.sock`: grpc/grpc#38142). That is not a valid
//! authority, and h2 (under tonic) resets every such request with PROTOCOL_ERROR
//! (hyperium/h2#487, unmerged). Go servers, SPIRE's included, accept it.
//!
//! So the bytes a client sends pass through [`FixedStream`]: after the HTTP/2 preface,
//! the first header block is decoded with an HPACK decoder (mirroring the client's
//! encoder). If its `:authority` is valid (or absent), the connection is passed through
//! untouched from then on. Otherwise every header block of the connection is decoded, its
//! `:authority` replaced by `localhost`, and re-encoded with this side's own HPACK encoder
//! (which h2's decoder then mirrors); all other frames pass unchanged. Header blocks are
//! budgeted, and a malformed one closes the connection.

use std::borrow::Cow;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use loona_hpack::{Decoder, Encoder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tonic::codegen::http::uri::Authority;
use tonic::transport::server::{Connected, UdsConnectInfo};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame payload accepted and sent on (HTTP/2's default
/// SETTINGS_MAX_FRAME_SIZE, which the server does not raise).
const MAX_FRAME: usize = 16_384;
/// The largest header block (HEADERS + CONTINUATION fragments) accepted.
const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// The most decoded header bytes (names and values) kept from one block.
const MAX_HEADER_LIST: usize = 256 * 1024;
/// The HPACK dynamic table size both ends use (HTTP/2's default, not changed by h2).
const TABLE_SIZE: usize = 4096;
/// What replaces an invalid `:authority`.
const LOCALHOST: &[u8] = b"localhost";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The first header block has not been seen yet.
    Undecided,
    /// The client's authority is valid: bytes pass untouched.
    PassThrough,
    /// Every header block is re-encoded with a fixed `:authority`.
    Rewrite,
}

/// A header block being received (HEADERS without END_HEADERS, then CONTINUATIONs).
struct Pending {
    stream: [u8; 4],
    flags: u8,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
}

/// The client-to-server half: frames in, frames out.
struct Rewriter {
    preface_done: bool,
    mode: Mode,
    decoder: Decoder<'static>,
    encoder: Encoder<'static>,
    pending: Option<Pending>,
}

/// Decoded header fields: (name, value).
type HeaderList = Vec<(Vec<u8>, Vec<u8>)>;

/// A malformed client stream: the connection is closed.
#[derive(Debug)]
struct Malformed;

fn u24(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [a, b, c, ..] => Some(usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c)),
        _ => None,
    }
}

impl Rewriter {
    fn new() -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(TABLE_SIZE);
        Self {
            preface_done: false,
            mode: Mode::Undecided,
            decoder,
            encoder: Encoder::new(),
            pending: None,
        }
    }

    const fn passing_through(&self) -> bool {
        matches!(self.mode, Mode::PassThrough)
    }

    /// Moves every complete frame of `input` to `out`, rewriting header blocks as the
    /// mode requires; an incomplete frame stays in `input`.
    fn process(&mut self, input: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), Malformed> {
        if !self.preface_done {
            let Some(preface) = input.get(..PREFACE.len()) else {
                return Ok(());
            };
            if preface != PREFACE {
                // Not HTTP/2 with prior knowledge: h2 refuses it by itself.
                self.mode = Mode::PassThrough;
            }
            self.preface_done = true;
            out.extend(input.drain(..PREFACE.len()));
        }
        loop {
            if self.passing_through() {
                out.append(input);
                return Ok(());
            }
            let Some(len) = input.get(..FRAME_HEADER_LEN).and_then(u24) else {
                return Ok(());
            };
            // h2 refuses frames over its SETTINGS_MAX_FRAME_SIZE anyway; refusing them
            // here bounds what is buffered.
            if len > MAX_FRAME {
                return Err(Malformed);
            }
            let total = FRAME_HEADER_LEN.saturating_add(len);
            if input.len() < total {
                return Ok(());
            }
            let frame: Vec<u8> = input.drain(..total).collect();
            let (Some(&kind), Some(&flags), Some(stream), Some(payload)) = (
                frame.get(3),
                frame.get(4),
                frame.get(5..FRAME_HEADER_LEN),
                frame.get(FRAME_HEADER_LEN..),
            ) else {
                return Err(Malformed);
            };
            let stream: [u8; 4] = stream.try_into().map_err(|_| Malformed)?;
            match kind {
                HEADERS => {
                    if self.pending.is_some() {
                        return Err(Malformed);
                    }
                    self.pending = Some(headers_fragment(stream, flags, payload)?);
                }
                CONTINUATION => {
                    let pending = self.pending.as_mut().ok_or(Malformed)?;
                    if pending.stream != stream
                        || pending.block.len().saturating_add(payload.len()) > MAX_HEADER_BLOCK
                    {
                        return Err(Malformed);
                    }
                    pending.block.extend_from_slice(payload);
                }
                _ => {
                    if self.pending.is_some() {
                        return Err(Malformed);
                    }
                    out.extend_from_slice(&frame);
                    continue;
                }
            }
            if flags & END_HEADERS != 0 {
                self.finish(out)?;
            }
        }
    }

    /// A complete header block: decided, rewritten or passed, and framed again.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Malformed> {
        let mut pending = self.pending.take().ok_or(Malformed)?;
        let mut headers = self.decode(&pending.block)?;
        let invalid = headers.iter().any(|(name, value)| {
            name == b":authority" && Authority::try_from(value.as_slice()).is_err()
        });
        let block = match (self.mode, invalid) {
            (Mode::Undecided, false) => {
                self.mode = Mode::PassThrough;
                std::mem::take(&mut pending.block)
            }
            (Mode::Undecided | Mode::Rewrite, _) => {
                if self.mode == Mode::Undecided {
                    tracing::debug!("rewriting a gRPC C-core client's unix-socket :authority");
                }
                self.mode = Mode::Rewrite;
                for (name, value) in &mut headers {
                    if name == b":authority" && Authority::try_from(value.as_slice()).is_err() {
                        LOCALHOST.clone_into(value);
                    }
                }
                self.encoder
                    .encode(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())))
            }
            (Mode::PassThrough, _) => return Err(Malformed),
        };
        emit(out, &pending, &block);
        Ok(())
    }

    /// Decodes a block with the client's HPACK state, within the budgets. The decoder is
    /// a dependency parsing untrusted bytes: a panic in it closes the connection.
    fn decode(&mut self, block: &[u8]) -> Result<HeaderList, Malformed> {
        let mut headers = Vec::new();
        let mut size: usize = 0;
        let mut over = false;
        let decoder = &mut self.decoder;
        let result = catch_unwind(AssertUnwindSafe(|| {
            decoder.decode_with_cb(block, |name: Cow<'_, [u8]>, value: Cow<'_, [u8]>| {
                size = size.saturating_add(name.len()).saturating_add(value.len());
                if size > MAX_HEADER_LIST {
                    over = true;
                } else {
                    headers.push((name.into_owned(), value.into_owned()));
                }
            })
        }));
        match result {
            Ok(Ok(())) if !over => Ok(headers),
            _ => Err(Malformed),
        }
    }
}

/// The header block fragment of a HEADERS frame, without padding and priority.
fn headers_fragment(stream: [u8; 4], flags: u8, payload: &[u8]) -> Result<Pending, Malformed> {
    let mut rest = payload;
    let mut padding = 0;
    if flags & PADDED != 0 {
        let (&pad, tail) = rest.split_first().ok_or(Malformed)?;
        padding = usize::from(pad);
        rest = tail;
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        let (fields, tail) = rest.split_at_checked(5).ok_or(Malformed)?;
        priority = Some(fields.try_into().map_err(|_| Malformed)?);
        rest = tail;
    }
    let fragment_len = rest.len().checked_sub(padding).ok_or(Malformed)?;
    let fragment = rest.get(..fragment_len).ok_or(Malformed)?;
    Ok(Pending {
        stream,
        flags,
        priority,
        block: fragment.to_vec(),
    })
}

/// Frames `block` as HEADERS (+ CONTINUATION) for the pending stream: END_STREAM and
/// the priority kept, no padding.
fn emit(out: &mut Vec<u8>, pending: &Pending, block: &[u8]) {
    let first_room = if pending.priority.is_some() {
        MAX_FRAME - 5
    } else {
        MAX_FRAME
    };
    let (first, mut rest) = block.split_at(first_room.min(block.len()));
    let frame_header = |out: &mut Vec<u8>, len: usize, kind: u8, flags: u8| {
        let len = u32::try_from(len).unwrap_or(0).to_be_bytes();
        out.extend_from_slice(len.get(1..).unwrap_or_default());
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&pending.stream);
    };
    let mut flags = pending.flags & (END_STREAM | PRIORITY);
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    let priority_len = pending.priority.map_or(0, |_| 5);
    frame_header(out, first.len() + priority_len, HEADERS, flags);
    if let Some(priority) = pending.priority {
        out.extend_from_slice(&priority);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(MAX_FRAME.min(rest.len()));
        rest = tail;
        let flags = if rest.is_empty() { END_HEADERS } else { 0 };
        frame_header(out, chunk.len(), CONTINUATION, flags);
        out.extend_from_slice(chunk);
    }
}

/// Runs `chunks` through a fresh rewriter (the fuzz target's entry).
pub(crate) fn rewrite_all(chunks: &[&[u8]]) -> Option<Vec<u8>> {
    let mut rewriter = Rewriter::new();
    let mut raw = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        raw.extend_from_slice(chunk);
        rewriter.process(&mut raw, &mut out).ok()?;
    }
    out.append(&mut raw);
    Some(out)
}

/// A Workload API connection whose incoming header blocks get a valid `:authority`.
pub(crate) struct FixedStream {
    inner: UnixStream,
    rewriter: Rewriter,
    raw: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl FixedStream {
    pub(crate) fn new(inner: UnixStream) -> Self {
        Self {
            inner,
            rewriter: Rewriter::new(),
            raw: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            eof: false,
        }
    }
}

impl Connected for FixedStream {
    type ConnectInfo = UdsConnectInfo;

    fn connect_info(&self) -> UdsConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for FixedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(pending) = this.out.get(this.out_pos..).filter(|p| !p.is_empty()) {
                let n = pending.len().min(buf.remaining());
                buf.put_slice(pending.get(..n).unwrap_or_default());
                this.out_pos = this.out_pos.saturating_add(n);
                if this.out_pos >= this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.rewriter.passing_through() && this.raw.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut chunk = [0_u8; 8192];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf))?;
            if chunk_buf.filled().is_empty() {
                this.eof = true;
                this.out.append(&mut this.raw);
                continue;
            }
            this.raw.extend_from_slice(chunk_buf.filled());
            this.rewriter
                .process(&mut this.raw, &mut this.out)
                .map_err(|Malformed| {
                    io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP/2 header block")
                })?;
        }
    }
}

impl AsyncWrite for FixedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(payload.len()).unwrap().to_be_bytes()[1..].to_vec();
        out.extend([kind, flags]);
        out.extend(stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn request(encoder: &mut Encoder<'_>, authority: &[u8]) -> Vec<u8> {
        encoder.encode([
            (&b":method"[..], &b"POST"[..]),
            (b":scheme", b"http"),
            (b":path", b"/SpiffeWorkloadAPI/FetchX509SVID"),
            (b":authority", authority),
            (b"workload.spiffe.io", b"true"),
        ])
    }

    /// Runs client bytes through a rewriter and decodes what comes out as h2 would.
    fn through(input: &[u8]) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut rewriter = Rewriter::new();
        let mut raw = input.to_vec();
        let mut out = Vec::new();
        rewriter.process(&mut raw, &mut out).unwrap();
        assert!(raw.is_empty());
        assert!(out.starts_with(PREFACE));
        let mut rest = &out[PREFACE.len()..];
        let mut decoder = Decoder::new();
        let mut blocks = Vec::new();
        while !rest.is_empty() {
            let len = u24(rest).unwrap();
            let (frame, tail) = rest.split_at(FRAME_HEADER_LEN + len);
            rest = tail;
            if frame[3] == HEADERS {
                assert_ne!(frame[4] & END_HEADERS, 0);
                blocks.push(decoder.decode(&frame[FRAME_HEADER_LEN..]).unwrap());
            }
        }
        blocks
    }

    #[test]
    fn rewrites_a_percent_encoded_authority_on_every_request() {
        let mut encoder = Encoder::new();
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x4, 0, 0, &[]));
        for stream in [1, 3] {
            let block = request(&mut encoder, b"tmp%2Fagent%2Fapi.sock");
            input.extend(frame(HEADERS, END_HEADERS, stream, &block));
            input.extend(frame(0x0, END_STREAM, stream, &[0, 0, 0, 0, 0]));
        }
        let blocks = through(&input);
        assert_eq!(blocks.len(), 2);
        for block in blocks {
            let authority = block.iter().find(|(n, _)| n == b":authority").unwrap();
            assert_eq!(authority.1, b"localhost");
            assert!(
                block
                    .iter()
                    .any(|(n, v)| n == b"workload.spiffe.io" && v == b"true")
            );
        }
    }

    #[test]
    fn passes_a_valid_authority_through_byte_for_byte() {
        let mut encoder = Encoder::new();
        let mut input = PREFACE.to_vec();
        let block = request(&mut encoder, b"localhost");
        input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &block));
        let mut rewriter = Rewriter::new();
        let mut raw = input.clone();
        let mut out = Vec::new();
        rewriter.process(&mut raw, &mut out).unwrap();
        assert_eq!(out, input);
        assert!(rewriter.passing_through());
    }

    #[test]
    fn joins_continuations_and_drops_padding() {
        let mut encoder = Encoder::new();
        let block = request(&mut encoder, b"run%2Fplinth%2Fapi.sock");
        let (a, b) = block.split_at(10);
        let mut headers = vec![3];
        headers.extend_from_slice(a);
        headers.extend([0, 0, 0]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, PADDED, 1, &headers));
        input.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        let blocks = through(&input);
        let authority = blocks[0].iter().find(|(n, _)| n == b":authority").unwrap();
        assert_eq!(authority.1, b"localhost");
    }

    #[test]
    fn rejects_an_oversized_frame_with_malformed() {
        let mut input = PREFACE.to_vec();
        input.extend([0x01, 0x00, 0x00, 0x0, 0, 0, 0, 0, 1]);
        let mut rewriter = Rewriter::new();
        let mut out = Vec::new();
        assert!(rewriter.process(&mut input, &mut out).is_err());
    }

    #[test]
    fn rejects_an_interleaved_frame_with_malformed() {
        let mut encoder = Encoder::new();
        let block = request(&mut encoder, b"a%2Fb");
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, 0, 1, &block));
        input.extend(frame(0x0, 0, 1, &[]));
        let mut rewriter = Rewriter::new();
        let mut out = Vec::new();
        assert!(rewriter.process(&mut input, &mut out).is_err());
    }
}
