//! Any octets as an NTS-KE message (RFC 8915 section 4), read both as a
//! client's request and as a server's response. Never a panic; the record
//! walk accounts for every octet it accepts and agrees with
//! `find_end_of_message`; a message that parses emits `buffer_len()`
//! octets that parse to the same meaning; the server's choice agrees with
//! the parse, and the answer it encodes reads back, on the client's side,
//! as what was chosen.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ntp_nts::Cookie;
use ntp_nts::ke::{
    self, ClientRequest, ErrorCode, KeError, Negotiation, RecordType, Records, ServerResponse,
};

fuzz_target!(|data: &[u8]| {
    // The walk: contiguous records, then at most one truncation.
    let mut walked = 0;
    let mut end_of_message = None;
    for record in Records::new(data) {
        let Ok(record) = record else {
            break;
        };
        assert_eq!(record.offset(), walked);
        assert_eq!(record.len(), 4 + usize::from(record.body_len()));
        assert_eq!(record.as_bytes(), &data[walked..walked + record.len()]);
        walked += record.len();
        if record.record_type() == RecordType::EndOfMessage && end_of_message.is_none() {
            end_of_message = Some(walked);
        }
    }
    assert_eq!(ke::find_end_of_message(data), end_of_message);

    match ClientRequest::parse(data) {
        Ok(request) => {
            assert_eq!(end_of_message, Some(data.len()));
            let mut out = vec![0xa5; request.buffer_len()];
            let len = request
                .emit(&mut out)
                .expect("emit into buffer_len() octets");
            assert_eq!(len, out.len());
            assert_eq!(ClientRequest::parse(&out), Ok(request));
            let negotiation = request.negotiate();
            assert_eq!(ke::negotiate(data), negotiation);
            assert_eq!(ke::negotiate(&out), negotiation);
            answer_reads_back(negotiation);
        }
        Err(error) => assert_eq!(
            ke::negotiate(data),
            Negotiation::Refuse(ErrorCode::for_request_error(&error))
        ),
    }

    if let Ok(response) = ServerResponse::parse(data) {
        assert_eq!(end_of_message, Some(data.len()));
        let cookies = Records::new(data)
            .map_while(Result::ok)
            .filter(|record| record.record_type() == RecordType::NewCookie)
            .count();
        assert_eq!(response.cookies.len(), cookies);
        assert!(response.cookies.clone().all(|cookie| !cookie.is_empty()));
        let mut out = vec![0xa5; response.buffer_len()];
        let len = response
            .emit(&mut out)
            .expect("emit into buffer_len() octets");
        assert_eq!(len, out.len());
        assert_eq!(ServerResponse::parse(&out), Ok(response));
    }
});

/// The server's answer for `negotiation` parses, on the client's side, to
/// what was chosen.
fn answer_reads_back(negotiation: Negotiation) {
    let cookies = [
        Cookie::new(&[0xc0; 100]).expect("cookie"),
        Cookie::new(&[0xc1; 1]).expect("cookie"),
    ];
    let len = ke::server_response_len(negotiation, &cookies, Some("ntp.example"), Some(123));
    let mut out = vec![0xa5; len];
    let written = ke::encode_server_response(
        negotiation,
        &cookies,
        Some("ntp.example"),
        Some(123),
        &mut out,
    )
    .expect("encode into server_response_len() octets");
    assert_eq!(written, len);
    let response = ServerResponse::parse(&out);
    match negotiation {
        Negotiation::Accept(algorithm) => {
            let response = response.expect("an accepting answer parses");
            assert_eq!(response.negotiated(&[algorithm]), Ok(algorithm));
            assert!(
                response
                    .cookies
                    .clone()
                    .eq(cookies.iter().map(Cookie::as_bytes))
            );
            assert_eq!(response.ntp_server, Some("ntp.example"));
            assert_eq!(response.ntp_port, Some(123));
        }
        Negotiation::NoCommonProtocol => assert_eq!(
            response.expect("a decline parses").negotiated(&[]),
            Err(KeError::NoCommonProtocol)
        ),
        Negotiation::NoCommonAead => assert_eq!(
            response.expect("a decline parses").negotiated(&[]),
            Err(KeError::NoCommonAead)
        ),
        Negotiation::Refuse(code) => assert_eq!(response, Err(KeError::ServerError(code))),
        _ => unreachable!("a negotiation this target does not know"),
    }
}
