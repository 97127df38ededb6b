//! The AWS event-stream framing (`application/vnd.amazon.eventstream`) that SubscribeToShard
//! answers with: each message is
//! `total length u32 BE | headers length u32 BE | CRC32 of those 8 bytes | headers | payload |
//! CRC32 of everything before it`, a header being `name length u8 | name | type u8 | value`
//! (only type 7, a string with a u16 BE length, is written here). Pure: bytes in, bytes out.

/// Header value type 7: a UTF-8 string with a 2-byte length.
const TYPE_STRING: u8 = 7;
/// Prelude (two lengths and their CRC) and the trailing message CRC.
const OVERHEAD_BYTES: usize = 12 + 4;

/// Appends one message with string `headers` and `payload` to `out`.
///
/// Header names are at most 255 bytes and values at most 65,535 (true of the fixed headers
/// this endpoint sends); a payload is at most a few MiB, far below the u32 length.
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8], out: &mut Vec<u8>) {
    let headers_len: usize = headers
        .iter()
        .map(|(name, value)| 1 + name.len() + 1 + 2 + value.len())
        .sum();
    let total_len = OVERHEAD_BYTES + headers_len + payload.len();
    let start = out.len();
    out.reserve(total_len);
    out.extend_from_slice(&(total_len as u32).to_be_bytes());
    out.extend_from_slice(&(headers_len as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out[start..start + 8]);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    for (name, value) in headers {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(TYPE_STRING);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&message_crc.to_be_bytes());
}

/// An `event` message of `event_type` with a JSON payload, as awsJson1_1 event streams send.
pub fn encode_event(event_type: &str, json_payload: &[u8], out: &mut Vec<u8>) {
    encode_message(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", "application/json"),
        ],
        json_payload,
        out,
    );
}

/// An `exception` message: a modelled error sent inside an open stream.
pub fn encode_exception(exception_type: &str, json_payload: &[u8], out: &mut Vec<u8>) {
    encode_message(
        &[
            (":message-type", "exception"),
            (":exception-type", exception_type),
            (":content-type", "application/json"),
        ],
        json_payload,
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::read_message_from;
    use aws_smithy_types::event_stream::HeaderValue;
    use bytes::Bytes;

    /// The one-header vector of the AWS CRT's event-stream tests
    /// (aws-c-event-stream, tests/message_deserializer_test.c).
    const CRT_ONE_HEADER: &[u8] = &[
        0x00, 0x00, 0x00, 0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96, 0x0C, b'c', b'o',
        b'n', b't', b'e', b'n', b't', b'-', b't', b'y', b'p', b'e', 0x07, 0x00, 0x10, b'a', b'p',
        b'p', b'l', b'i', b'c', b'a', b't', b'i', b'o', b'n', b'/', b'j', b's', b'o', b'n', 0x7b,
        0x27, 0x66, 0x6f, 0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0x8D, 0x9C, 0x08,
        0xB1,
    ];

    #[test]
    fn encodes_the_crt_vector_byte_for_byte() {
        let mut out = Vec::new();
        encode_message(
            &[("content-type", "application/json")],
            b"{'foo':'bar'}",
            &mut out,
        );
        assert_eq!(&out[..4], &[0, 0, 0, 0x3D], "total length");
        assert_eq!(&out[4..8], &[0, 0, 0, 0x20], "headers length");
        assert_eq!(&out[8..12], &[0x07, 0xFD, 0x83, 0x96], "prelude CRC");
        assert_eq!(
            &out[out.len() - 4..],
            &[0x8D, 0x9C, 0x08, 0xB1],
            "message CRC"
        );
        assert_eq!(out, CRT_ONE_HEADER);
    }

    #[test]
    fn events_decode_with_the_sdk_reader_and_corruption_is_caught() {
        let mut out = b"previous".to_vec();
        encode_event("SubscribeToShardEvent", br#"{"Records":[]}"#, &mut out);
        let mut bytes = Bytes::from(out[8..].to_vec());
        let message = read_message_from(&mut bytes).expect("a valid message");
        let header = |name: &str| {
            message
                .headers()
                .iter()
                .find(|h| h.name().as_str() == name)
                .map(|h| h.value().clone())
        };
        assert_eq!(
            header(":event-type"),
            Some(HeaderValue::String("SubscribeToShardEvent".into()))
        );
        assert_eq!(
            header(":message-type"),
            Some(HeaderValue::String("event".into()))
        );
        assert_eq!(message.payload().as_ref(), br#"{"Records":[]}"#);
        assert!(bytes.is_empty(), "the message is consumed exactly");

        let mut corrupt = out[8..].to_vec();
        let middle = corrupt.len() / 2;
        corrupt[middle] ^= 1;
        assert!(read_message_from(&mut Bytes::from(corrupt)).is_err());

        let mut exception = Vec::new();
        encode_exception(
            "ResourceInUseException",
            br#"{"message":"x"}"#,
            &mut exception,
        );
        let message = read_message_from(&mut Bytes::from(exception)).unwrap();
        assert_eq!(
            message.headers()[1].value(),
            &HeaderValue::String("ResourceInUseException".into())
        );
    }
}
