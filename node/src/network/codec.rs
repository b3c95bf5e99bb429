//! The request-response wire format: one length-prefixed byte string each way.
//!
//! A 4-byte big-endian length, then that many bytes. The length is checked against the limit
//! *before* anything is allocated or read, so a peer cannot make us buffer more than
//! [`NetworkConfig::max_request_size`](super::NetworkConfig::max_request_size) (requests) or
//! [`NetworkConfig::max_response_size`](super::NetworkConfig::max_response_size) (responses).
//! The bytes themselves are the runtime's business.

use std::io;

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

/// The catch-up protocol's name on the wire.
pub(crate) const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/caihong/sync/1.0.0");

#[derive(Debug, Clone)]
pub(crate) struct BytesCodec {
    pub max_request: usize,
    pub max_response: usize,
}

async fn read_frame<T>(io: &mut T, max: usize, what: &str) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(too_large(what, len, max));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T>(io: &mut T, data: &[u8], max: usize, what: &str) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    if data.len() > max {
        return Err(too_large(what, data.len(), max));
    }
    io.write_all(&(data.len() as u32).to_be_bytes()).await?;
    io.write_all(data).await?;
    io.flush().await
}

fn too_large(what: &str, len: usize, max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what} of {len} bytes exceeds the limit of {max} bytes"),
    )
}

#[async_trait]
impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_request, "request").await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response, "response").await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, self.max_request, "request").await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.max_response, "response").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use request_response::Codec;

    fn codec() -> BytesCodec {
        BytesCodec {
            max_request: 8,
            max_response: 16,
        }
    }

    #[test]
    fn frames_round_trip() {
        block_on(async {
            let mut buf = Cursor::new(Vec::new());
            codec()
                .write_request(&SYNC_PROTOCOL, &mut buf, b"abc".to_vec())
                .await
                .unwrap();
            assert_eq!(buf.get_ref(), &[0, 0, 0, 3, b'a', b'b', b'c']);
            buf.set_position(0);
            let got = codec()
                .read_request(&SYNC_PROTOCOL, &mut buf)
                .await
                .unwrap();
            assert_eq!(got, b"abc");
        });
    }

    #[test]
    fn oversized_frames_are_refused_before_reading_the_body() {
        block_on(async {
            // A length prefix over the limit is an error even though no body follows.
            let mut buf = Cursor::new(vec![0, 0, 0, 9]);
            let err = codec()
                .read_request(&SYNC_PROTOCOL, &mut buf)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            // Responses have their own, larger limit.
            let mut buf = Cursor::new([&[0, 0, 0, 9][..], &[7; 9]].concat());
            assert_eq!(
                codec()
                    .read_response(&SYNC_PROTOCOL, &mut buf)
                    .await
                    .unwrap(),
                vec![7; 9]
            );
            // Writers refuse too, so nothing oversized leaves the node.
            let mut out = Cursor::new(Vec::new());
            assert!(
                codec()
                    .write_request(&SYNC_PROTOCOL, &mut out, vec![0; 9])
                    .await
                    .is_err()
            );
            assert!(out.get_ref().is_empty());
        });
    }
}
