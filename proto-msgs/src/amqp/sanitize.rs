//! Makes every AMQP short string the broker sends us valid UTF-8 before lapin parses it.
//!
//! AMQP strings are bytes, and any client may publish a correlation id, a header name or
//! a routing key that is not UTF-8. lapin's parser (amq-protocol) reads short strings with
//! `String::from_utf8` and treats a failure as a broken connection: the connection drops,
//! the broker redelivers the message, and the consumer chokes on it again, forever
//! (amqp-rs/amq-protocol#28: long strings became bytes, short strings are meant to be
//! UTF-8 by the spec and stay so). We can't change the parser, so the frames are fixed
//! on their way in: each invalid byte becomes one `?`, so a string keeps its length and
//! every length prefix around it stays true. The request then gets an answer like any
//! other. A header table we cannot even walk (an unknown value type) is replaced by one
//! header, [`MALFORMED_HEADERS`], which the RPC server answers with `invalid_argument`.
//!
//! Only what can carry text from another publisher is looked at: the content header of
//! every message, and `basic.deliver` / `basic.return` / `basic.get-ok` (exchange and
//! routing key). Everything else passes through untouched.

/// Header put in place of a table that could not be read.
pub const MALFORMED_HEADERS: &str = "x-shop-malformed-headers";

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
/// Every frame ends with this octet.
pub(crate) const FRAME_END: u8 = 0xCE;
/// Frame type, channel and payload size.
pub(crate) const FRAME_PREFIX: usize = 7;

const CLASS_BASIC: u16 = 60;
const BASIC_RETURN: u16 = 50;
const BASIC_DELIVER: u16 = 60;
const BASIC_GET_OK: u16 = 71;

/// Nesting of tables and arrays beyond which a table counts as unreadable.
const MAX_DEPTH: usize = 16;

/// Fixes one complete frame (prefix, payload, end octet) in place. Returns a new frame
/// when its size had to change (an unreadable header table was replaced).
pub(crate) fn frame(frame: &mut [u8]) -> Option<Vec<u8>> {
    if frame.len() < FRAME_PREFIX + 1 {
        return None;
    }
    let (head, rest) = frame.split_at_mut(FRAME_PREFIX);
    let (_end, payload) = rest.split_last_mut()?;
    match head[0] {
        FRAME_METHOD => {
            method(payload);
            None
        }
        FRAME_HEADER => content_header(payload).map(|payload| {
            let mut out = Vec::with_capacity(FRAME_PREFIX + payload.len() + 1);
            out.extend_from_slice(&head[..3]);
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            out.extend_from_slice(&payload);
            out.push(FRAME_END);
            out
        }),
        _ => None,
    }
}

/// Replaces the bytes of every invalid UTF-8 sequence by `?`, one for one.
pub(crate) fn text(bytes: &mut [u8]) {
    let mut at = 0;
    while at < bytes.len() {
        match std::str::from_utf8(&bytes[at..]) {
            Ok(_) => return,
            Err(e) => {
                let bad_from = at + e.valid_up_to();
                let bad_to = match e.error_len() {
                    Some(n) => bad_from + n,
                    None => bytes.len(),
                };
                bytes[bad_from..bad_to].fill(b'?');
                at = bad_to;
            }
        }
    }
}

/// A cursor over a payload that fixes short strings as it walks them.
struct Walk<'a> {
    bytes: &'a mut [u8],
    at: usize,
}

impl<'a> Walk<'a> {
    fn new(bytes: &'a mut [u8]) -> Self {
        Walk { bytes, at: 0 }
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.at.checked_add(n)?;
        (end <= self.bytes.len()).then(|| self.at = end)
    }

    fn u8(&mut self) -> Option<u8> {
        let v = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(v)
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.bytes.get(self.at..self.at + 2)?;
        let v = u16::from_be_bytes([b[0], b[1]]);
        self.at += 2;
        Some(v)
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes.get(self.at..self.at + 4)?;
        let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        self.at += 4;
        Some(v)
    }

    fn short_str(&mut self) -> Option<()> {
        let len = usize::from(self.u8()?);
        let end = self.at.checked_add(len)?;
        text(self.bytes.get_mut(self.at..end)?);
        self.at = end;
        Some(())
    }

    /// A field table (length-prefixed): keys are short strings, values typed.
    fn table(&mut self, depth: usize) -> Option<()> {
        let len = self.u32()? as usize;
        let end = self.at.checked_add(len)?;
        if end > self.bytes.len() || depth > MAX_DEPTH {
            return None;
        }
        while self.at < end {
            self.short_str()?;
            self.value(depth)?;
        }
        (self.at == end).then_some(())
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        let len = self.u32()? as usize;
        let end = self.at.checked_add(len)?;
        if end > self.bytes.len() || depth > MAX_DEPTH {
            return None;
        }
        while self.at < end {
            self.value(depth)?;
        }
        (self.at == end).then_some(())
    }

    /// One typed value, with the type letters RabbitMQ uses (as amq-protocol reads them).
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.u8()? {
            b't' | b'b' | b'B' => self.skip(1),
            b's' | b'U' | b'u' => self.skip(2),
            b'I' | b'i' | b'f' => self.skip(4),
            b'L' | b'l' | b'd' | b'T' => self.skip(8),
            b'D' => self.skip(5),
            b'S' | b'x' => {
                let len = self.u32()? as usize;
                self.skip(len)
            }
            b'A' => self.array(depth + 1),
            b'F' => self.table(depth + 1),
            b'V' => Some(()),
            _ => None,
        }
    }
}

/// `basic.deliver`, `basic.return`, `basic.get-ok`: the strings another client chose.
fn method(payload: &mut [u8]) {
    let mut w = Walk::new(payload);
    let (Some(class), Some(method)) = (w.u16(), w.u16()) else {
        return;
    };
    if class != CLASS_BASIC {
        return;
    }
    let _ = match method {
        // consumer-tag, delivery-tag, redelivered, exchange, routing-key
        BASIC_DELIVER => (|| {
            w.short_str()?;
            w.skip(9)?;
            w.short_str()?;
            w.short_str()
        })(),
        // reply-code, reply-text, exchange, routing-key
        BASIC_RETURN => (|| {
            w.skip(2)?;
            w.short_str()?;
            w.short_str()?;
            w.short_str()
        })(),
        // delivery-tag, redelivered, exchange, routing-key, message-count
        BASIC_GET_OK => (|| {
            w.skip(9)?;
            w.short_str()?;
            w.short_str()
        })(),
        _ => None,
    };
}

/// The properties of a `basic` content header, in flag order (bit 15 first).
#[derive(Clone, Copy)]
enum Prop {
    ShortStr,
    Table,
    Octet,
    Timestamp,
}

const BASIC_PROPERTIES: [Prop; 14] = [
    Prop::ShortStr,  // content-type
    Prop::ShortStr,  // content-encoding
    Prop::Table,     // headers
    Prop::Octet,     // delivery-mode
    Prop::Octet,     // priority
    Prop::ShortStr,  // correlation-id
    Prop::ShortStr,  // reply-to
    Prop::ShortStr,  // expiration
    Prop::ShortStr,  // message-id
    Prop::Timestamp, // timestamp
    Prop::ShortStr,  // type
    Prop::ShortStr,  // user-id
    Prop::ShortStr,  // app-id
    Prop::ShortStr,  // cluster-id
];

/// Fixes the strings of a content header in place; returns a new payload when the
/// header table could not be read and was replaced.
fn content_header(payload: &mut [u8]) -> Option<Vec<u8>> {
    let mut w = Walk::new(payload);
    // class-id, weight, body-size, property flags
    let class = w.u16()?;
    w.skip(10)?;
    let flags = w.u16()?;
    if class != CLASS_BASIC || flags & 1 != 0 {
        return None;
    }
    for (i, prop) in BASIC_PROPERTIES.iter().enumerate() {
        if flags & (1 << (15 - i)) == 0 {
            continue;
        }
        match prop {
            Prop::ShortStr => w.short_str()?,
            Prop::Octet => w.skip(1)?,
            Prop::Timestamp => w.skip(8)?,
            Prop::Table => {
                let start = w.at;
                if w.table(0).is_none() {
                    return Some(replace_table(payload, start));
                }
            }
        }
    }
    None
}

/// `payload` with the table at `start` replaced by `{MALFORMED_HEADERS: true}`, and every
/// property after it kept if it can be found (it can't when the table's own length is
/// wrong: then they are dropped with their flags).
fn replace_table(payload: &[u8], start: usize) -> Vec<u8> {
    let mut marker = Vec::new();
    marker.push(MALFORMED_HEADERS.len() as u8);
    marker.extend_from_slice(MALFORMED_HEADERS.as_bytes());
    marker.extend_from_slice(b"t\x01");
    let declared = payload
        .get(start..start + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let after = declared
        .and_then(|len| start.checked_add(4)?.checked_add(len))
        .filter(|end| *end <= payload.len());
    let mut out = Vec::with_capacity(payload.len() + marker.len());
    out.extend_from_slice(&payload[..start]);
    out.extend_from_slice(&(marker.len() as u32).to_be_bytes());
    out.extend_from_slice(&marker);
    match after {
        Some(end) => {
            out.extend_from_slice(&payload[end..]);
            // What follows the table is walked (and fixed) like the rest.
            let mut tail = out.split_off(start + 4 + marker.len());
            let _ = content_tail(&mut tail, flags_of(payload));
            out.extend_from_slice(&tail);
        }
        None => {
            // Keep only the properties before the headers, and the headers flag.
            let flags = flags_of(payload) & 0b1110_0000_0000_0000;
            out[12..14].copy_from_slice(&flags.to_be_bytes());
        }
    }
    out
}

fn flags_of(payload: &[u8]) -> u16 {
    payload
        .get(12..14)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}

/// The properties after `headers` (flag bits 12..2).
fn content_tail(tail: &mut [u8], flags: u16) -> Option<()> {
    let mut w = Walk::new(tail);
    for (i, prop) in BASIC_PROPERTIES.iter().enumerate().skip(3) {
        if flags & (1 << (15 - i)) == 0 {
            continue;
        }
        match prop {
            Prop::ShortStr => w.short_str()?,
            Prop::Octet => w.skip(1)?,
            Prop::Timestamp => w.skip(8)?,
            Prop::Table => w.table(0)?,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::BasicProperties;
    use lapin::types::{AMQPValue, FieldTable, LongString};

    /// A content header frame for `props`, encoded by amq-protocol itself.
    fn header_frame(props: BasicProperties) -> Vec<u8> {
        use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
        let frame = AMQPFrame::Header(
            1,
            AMQPContentHeader {
                class_id: CLASS_BASIC,
                body_size: 2,
                properties: props,
            },
        );
        let mut buf = vec![0u8; 4096];
        let written = gen_frame(&frame)(WriteContext::from(&mut buf[..]))
            .expect("encodes")
            .into_inner()
            .1;
        buf.truncate(written as usize);
        buf
    }

    fn parse(frame: &[u8]) -> amq_protocol::frame::AMQPFrame {
        amq_protocol::frame::parse_frame(frame).expect("parses").1
    }

    /// Replaces `needle` (a valid placeholder) by bytes that are not UTF-8, same length.
    fn corrupt(frame: &mut [u8], needle: &[u8], with: &[u8]) {
        let at = frame
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("placeholder present");
        frame[at..at + with.len()].copy_from_slice(with);
    }

    #[test]
    fn text_keeps_its_length() {
        let mut b = *b"a\xff\xfeb\xc3";
        text(&mut b);
        assert_eq!(&b, b"a??b?");
        let mut ok = "héllo".as_bytes().to_vec();
        text(&mut ok);
        assert_eq!(ok, "héllo".as_bytes());
    }

    #[test]
    fn bad_correlation_id_and_header_name_are_fixed_in_place() {
        let mut headers = FieldTable::default();
        headers.insert("x-name-XX".into(), AMQPValue::LongString("v".into()));
        headers.insert(
            "x-bytes".into(),
            AMQPValue::LongString(LongString::from(vec![0xff, 0x00])),
        );
        let props = BasicProperties::default()
            .with_correlation_id("corr-YY".into())
            .with_headers(headers)
            .with_type("users.me".into());
        let mut f = header_frame(props);
        assert!(amq_protocol::frame::parse_frame(&f[..]).is_ok());
        corrupt(&mut f, b"corr-YY", b"corr-\xff\xfe");
        corrupt(&mut f, b"x-name-XX", b"x-name-\xc3\x28");
        assert!(
            amq_protocol::frame::parse_frame(&f[..]).is_err(),
            "lapin would choke"
        );
        assert_eq!(frame(&mut f), None, "fixed in place");
        let amq_protocol::frame::AMQPFrame::Header(_, h) = parse(&f) else {
            panic!("not a header")
        };
        assert_eq!(
            h.properties.correlation_id().as_ref().unwrap().as_str(),
            "corr-??"
        );
        let table = h.properties.headers().clone().unwrap();
        assert!(table.inner().contains_key("x-name-?("));
        assert_eq!(h.properties.kind().as_ref().unwrap().as_str(), "users.me");
    }

    #[test]
    fn an_unreadable_table_is_replaced_by_the_marker() {
        let mut headers = FieldTable::default();
        headers.insert("x-a".into(), AMQPValue::LongString("v".into()));
        let props = BasicProperties::default()
            .with_headers(headers)
            .with_correlation_id("c-1".into());
        let mut f = header_frame(props);
        // The value's type letter 'S' becomes one nobody knows.
        corrupt(&mut f, b"x-aS", b"x-aQ");
        let fixed = frame(&mut f).expect("rebuilt");
        let amq_protocol::frame::AMQPFrame::Header(_, h) = parse(&fixed) else {
            panic!("not a header")
        };
        let table = h.properties.headers().clone().unwrap();
        assert_eq!(
            table.inner().get(MALFORMED_HEADERS),
            Some(&AMQPValue::Boolean(true))
        );
        assert_eq!(
            h.properties.correlation_id().as_ref().unwrap().as_str(),
            "c-1"
        );
    }

    #[test]
    fn deliver_strings_are_fixed() {
        // class 60, method 60: consumer-tag "ct", tag 7, redelivered 0, exchange "ex",
        // routing-key "k\xff"
        let mut payload = vec![0, 60, 0, 60, 2, b'c', b't'];
        payload.extend_from_slice(&7u64.to_be_bytes());
        payload.push(0);
        payload.extend_from_slice(&[2, b'e', b'x', 2, b'k', 0xff]);
        let mut f = vec![FRAME_METHOD, 0, 1];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(&payload);
        f.push(FRAME_END);
        assert!(amq_protocol::frame::parse_frame(&f[..]).is_err());
        assert_eq!(frame(&mut f), None);
        assert!(amq_protocol::frame::parse_frame(&f[..]).is_ok());
        assert!(f.ends_with(&[2, b'k', b'?', FRAME_END]));
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..64usize {
            for seed in 0..32u8 {
                let mut f: Vec<u8> = (0..len)
                    .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                    .collect();
                if let Some(b) = f.first_mut() {
                    *b = 1 + seed % 2;
                }
                let _ = frame(&mut f);
            }
        }
    }
}
