//! An in-process DNS server for tests: answers from fixed zones over UDP and
//! TCP on one loopback port, like a recursive resolver that knows them all.

use hickory_resolver::proto::dnssec::crypto::EcdsaSigningKey;
use hickory_resolver::proto::dnssec::rdata::{DNSSECRData, SigInput, DNSKEY, NSEC, RRSIG};
use hickory_resolver::proto::dnssec::{
    Algorithm, Nsec3HashAlgorithm, SigningKey, TrustAnchors, TBS,
};
use hickory_resolver::proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::SOA;
use hickory_resolver::proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// One zone: its apex, every record in it (SOA, signatures, NSECs at
/// names), and denial records (NSEC3 or covering NSECs, with their
/// signatures) added to every negative answer.
#[derive(Clone)]
pub(crate) struct TestZone {
    pub apex: Name,
    pub records: Vec<Record>,
    pub denial: Vec<Record>,
    /// NSEC3 salt and iterations when `denial` is an NSEC3 chain: then
    /// only the records RFC 5155 §7.2 asks for are sent, as a real
    /// server would.
    pub nsec3: Option<(Vec<u8>, u16)>,
}

impl TestZone {
    pub(crate) fn new(apex: &str, records: Vec<Record>) -> Self {
        TestZone {
            apex: name(apex),
            records,
            denial: Vec::new(),
            nsec3: None,
        }
    }

    /// The denial records for a negative answer about `qname`.
    fn denial_for(&self, qname: &Name, nxdomain: bool) -> Vec<Record> {
        let Some((salt, iterations)) = &self.nsec3 else {
            return self.denial.clone();
        };
        let hash = |n: &Name| {
            super::base32hex(
                Nsec3HashAlgorithm::SHA1
                    .hash(salt, n, *iterations)
                    .unwrap()
                    .as_ref(),
            )
        };
        let chain: Vec<(String, String, &Record)> = self
            .denial
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::NSEC3(n)) => {
                    let own = String::from_utf8_lossy(r.name.iter().next()?).to_lowercase();
                    Some((own, super::base32hex(n.next_hashed_owner_name()), r))
                }
                _ => None,
            })
            .collect();
        let matching = |n: &Name| chain.iter().find(|(o, _, _)| *o == hash(n));
        let covering = |n: &Name| {
            chain
                .iter()
                .find(|(o, next, _)| super::covers(o, next, &hash(n)))
        };
        let mut picked: Vec<&Record> = Vec::new();
        if let Some((_, _, r)) = matching(qname) {
            picked.push(r);
        } else {
            let mut ce = qname.base_name();
            while matching(&ce).is_none() && ce != self.apex && !ce.is_root() {
                ce = ce.base_name();
            }
            picked.extend(matching(&ce).map(|m| m.2));
            let next_closer = qname.trim_to(usize::from(ce.num_labels()) + 1);
            picked.extend(covering(&next_closer).map(|m| m.2));
            if nxdomain {
                let wildcard = ce.prepend_label("*").unwrap();
                picked.extend(covering(&wildcard).or(matching(&wildcard)).map(|m| m.2));
            }
        }
        let mut out = Vec::new();
        for r in picked {
            if out.contains(r) {
                continue;
            }
            out.push(r.clone());
            out.extend(
                self.denial
                    .iter()
                    .filter(|s| s.name == r.name && covers(s, RecordType::NSEC3))
                    .cloned(),
            );
        }
        out
    }
}

/// Zones shared with the server, so tests can change them.
pub(crate) type Zones = Arc<Mutex<Vec<TestZone>>>;

pub(crate) fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// A record with TTL 0, so resolver caches never hide a change.
pub(crate) fn rec(owner: &str, rdata: RData) -> Record {
    Record::from_rdata(name(owner), 0, rdata)
}

pub(crate) fn soa(apex: &str) -> Record {
    let rdata = SOA::new(name(apex), name(apex), 1, 3600, 600, 86400, 0);
    rec(apex, RData::SOA(rdata))
}

/// A zone-signing key (ECDSA P-256) and its DNSKEY.
pub(crate) struct Signer {
    key: EcdsaSigningKey,
    dnskey: DNSKEY,
    tag: u16,
    zone: Name,
}

impl Signer {
    pub(crate) fn new(zone: &str) -> Self {
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256).unwrap();
        let key = EcdsaSigningKey::from_pkcs8(&pkcs8, Algorithm::ECDSAP256SHA256).unwrap();
        let dnskey = DNSKEY::from_key(&key.to_public_key().unwrap());
        let tag = dnskey.calculate_key_tag().unwrap();
        Signer {
            key,
            dnskey,
            tag,
            zone: name(zone),
        }
    }

    /// Trust anchors holding just this key.
    pub(crate) fn anchors(&self) -> TrustAnchors {
        let mut t = TrustAnchors::empty();
        self.add_anchor(&mut t);
        t
    }

    /// Adds this key to `anchors`, trusted at this signer's zone.
    pub(crate) fn add_anchor(&self, anchors: &mut TrustAnchors) {
        anchors.insert_with_name(self.dnskey.public_key(), (&self.zone).into());
    }

    pub(crate) fn dnskey_record(&self) -> Record {
        Record::from_rdata(
            self.zone.clone(),
            0,
            RData::DNSSEC(DNSSECRData::DNSKEY(self.dnskey.clone())),
        )
    }

    /// An RRSIG over `rrset` (same owner and type), valid for an hour either way.
    pub(crate) fn sign(&self, rrset: &[Record]) -> Record {
        let first = &rrset[0];
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32;
        let input = SigInput {
            type_covered: first.record_type(),
            algorithm: Algorithm::ECDSAP256SHA256,
            num_labels: first.name.num_labels(),
            original_ttl: first.ttl,
            sig_expiration: SerialNumber::new(now + 3600),
            sig_inception: SerialNumber::new(now - 3600),
            key_tag: self.tag,
            signer_name: self.zone.clone(),
        };
        let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, rrset.iter()).unwrap();
        let sig = self.key.sign(&tbs).unwrap();
        Record::from_rdata(
            first.name.clone(),
            first.ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
        )
    }

    /// `rrset` followed by its signature.
    pub(crate) fn signed(&self, rrset: Vec<Record>) -> Vec<Record> {
        let sig = self.sign(&rrset);
        let mut v = rrset;
        v.push(sig);
        v
    }

    /// A signed NSEC at `owner` listing `types` (plus RRSIG and NSEC).
    pub(crate) fn nsec(&self, owner: &str, next: &str, types: &[RecordType]) -> Vec<Record> {
        let mut all = types.to_vec();
        all.push(RecordType::RRSIG);
        let nsec = NSEC::new_cover_self(name(next), all);
        self.signed(vec![rec(owner, RData::DNSSEC(DNSSECRData::NSEC(nsec)))])
    }
}

fn covers(r: &Record, t: RecordType) -> bool {
    matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == t)
}

/// The answer to `req` from `zones`.
pub(crate) fn answer(zones: &[TestZone], req: &Message) -> Message {
    let mut resp = Message::response(req.metadata.id, OpCode::Query);
    resp.metadata.authoritative = true;
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    if let Some(e) = &req.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(4096)
            .set_dnssec_ok(e.flags().dnssec_ok);
        resp.set_edns(edns);
    }
    let Some(q) = req.queries.first() else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return resp;
    };
    resp.add_query(q.clone());
    let (qname, qtype) = (q.name(), q.query_type());
    let mut candidates: Vec<&TestZone> = zones.iter().filter(|z| z.apex.zone_of(qname)).collect();
    candidates.sort_by_key(|z| std::cmp::Reverse(z.apex.num_labels()));
    // A DS record lives in the parent zone of a delegation.
    let zone = if qtype == RecordType::DS && candidates.first().is_some_and(|z| z.apex == *qname) {
        candidates.get(1)
    } else {
        candidates.first()
    };
    let Some(zone) = zone else {
        resp.metadata.response_code = ResponseCode::Refused;
        return resp;
    };
    let answers: Vec<Record> = zone
        .records
        .iter()
        .filter(|r| r.name == *qname && (r.record_type() == qtype || covers(r, qtype)))
        .cloned()
        .collect();
    if answers.iter().any(|r| r.record_type() == qtype) {
        resp.insert_answers(answers);
        return resp;
    }
    let exists = zone.records.iter().any(|r| qname.zone_of(&r.name));
    resp.metadata.response_code = if exists {
        ResponseCode::NoError
    } else {
        ResponseCode::NXDomain
    };
    let authority: Vec<Record> = zone
        .records
        .iter()
        .filter(|r| {
            let soa = r.name == zone.apex
                && (r.record_type() == RecordType::SOA || covers(r, RecordType::SOA));
            let nsec = r.name == *qname
                && (r.record_type() == RecordType::NSEC || covers(r, RecordType::NSEC));
            soa || nsec
        })
        .cloned()
        .chain(zone.denial_for(qname, !exists))
        .collect();
    resp.insert_authorities(authority);
    resp
}

fn reply(zones: &Zones, packet: &[u8]) -> Option<Vec<u8>> {
    let req = Message::from_vec(packet).ok()?;
    let resp = answer(&zones.lock().unwrap(), &req);
    resp.to_vec().ok()
}

/// Serves `zones` on a loopback port (UDP and TCP) until the runtime ends.
pub(crate) async fn serve(zones: Zones) -> SocketAddr {
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    let z = zones.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            if let Some(bytes) = reply(&z, &buf[..n]) {
                let _ = udp.send_to(&bytes, peer).await;
            }
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            let z = zones.clone();
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).await.is_err() {
                        break;
                    }
                    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
                    if s.read_exact(&mut msg).await.is_err() {
                        break;
                    }
                    let Some(bytes) = reply(&z, &msg) else { break };
                    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&bytes);
                    if s.write_all(&out).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}
