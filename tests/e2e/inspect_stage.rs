//! The inspect stage on accepted mail: findings (ids and counts) recorded in
//! the spool and metrics, never values in logs; a broken rule set stops the
//! start; a failed reload keeps the old rules.

use sealgate_e2e::{queued_id, Gateway, Smtp};
use std::path::Path;
use std::time::{Duration, Instant};

fn copy_rules(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dlp-rules");
    for sub in ["detectors", "keywords", "filters", "policies"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for f in std::fs::read_dir(from.join(sub)).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(sub).join(f.file_name().unwrap())).unwrap();
        }
    }
}

fn inspected(g: &Gateway, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = g.cli(&["queue", "show", id, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        if !v["inspection"].is_null() {
            return v["inspection"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "not inspected: {v:#}\n{}",
            g.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn findings_are_recorded_never_logged_and_reload_keeps_old_rules() {
    let rules = tempfile::tempdir().unwrap();
    copy_rules(rules.path());
    let mut g = Gateway::start(&format!(
        "[dlp]\nrules_dir = \"{}\"\n",
        rules.path().display()
    ));
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    let body = b"Subject: lab results\r\n\r\nPatient SSN: 536-90-4399, diagnosis diabetes.\r\n";
    let (code, text) = c
        .message("nurse@tenant.test", &["x@example.com"], body)
        .unwrap();
    assert_eq!(code, 250, "{text}");
    let id = queued_id(&text).unwrap();
    let found = inspected(&g, &id);
    let ssn = found["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["detector"] == "us_ssn")
        .expect("us_ssn found");
    assert_eq!(ssn["count"], 1);
    assert!(
        g.metric("sealgate_dlp_findings_total{confidence=\"high\",detector=\"us_ssn\"}") >= 1.0
    );
    let show = String::from_utf8(g.cli(&["queue", "show", &id]).stdout).unwrap();
    assert!(show.contains("us_ssn"), "{show}");
    assert!(
        !g.log().contains("536-90-4399") && !g.log().contains("4399"),
        "a value reached the log"
    );

    // Break the rules and reload: the old set stays in force.
    let ssn_file = rules.path().join("detectors/us_ssn.toml");
    std::fs::write(&ssn_file, "id = \"us_ssn\"\nbroken = [\n").unwrap();
    g.reload("reload failed");
    let (code, text) = c
        .message("nurse@tenant.test", &["x@example.com"], body)
        .unwrap();
    assert_eq!(code, 250);
    let found = inspected(&g, &queued_id(&text).unwrap());
    assert!(found["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["detector"] == "us_ssn"));

    // And a restart with the broken set is refused, naming the file.
    g.stop();
    let out = std::process::Command::new(sealgate_e2e::sealgate_bin())
        .args(["serve", "--config"])
        .arg(&g.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("us_ssn.toml"), "{err}");
}

/// Inbound mail: the tenant's copy carries `X-Sealgate-DLP` with rule and
/// detector ids (a forged one from outside is removed); with `enforce`, a
/// bulk-SSN message is held for an admin without any notice to the outside
/// sender, and an admin's release delivers it to the tenant as it came.
#[test]
fn inbound_findings_tag_the_tenant_copy_and_enforce_holds_bulk_data() {
    let tenant = sealgate_e2e::postfix_mailbox("dlptenant", "hospital.test", "");
    let g = Gateway::start(&format!(
        "[[connector]]\nname = \"tenant\"\ncidrs = [\"127.0.0.2/32\"]\n\n\
         [delivery]\nsmart_host = {{ host = \"127.0.0.1\", port = {} }}\n\n\
         [tls]\ndane = false\nmta_sts = false\n\n\
         [policy]\ninbound_dlp = \"enforce\"\n",
        tenant.port
    ));
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO lab.outside.test").unwrap();
    let one = b"Subject: results\r\nX-Sealgate-DLP: rules=none\r\n\r\nPatient SSN: 536-90-4399\r\n";
    let (code, text) = c
        .message("lab@outside.test", &["dr@hospital.test"], one)
        .unwrap();
    assert_eq!(code, 250, "{text}");
    let mail = sealgate_e2e::wait_for(30, "the tagged copy", || {
        tenant
            .mailbox()
            .into_iter()
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .find(|m| m.contains("Subject: results"))
    });
    assert!(
        mail.replace("\n\t", " ").contains(
            "X-Sealgate-DLP: rules=hipaa_pci:ssn; action=encrypt; detectors=us_ssn:high:1"
        ),
        "{mail}"
    );
    assert!(
        !mail.contains("rules=none"),
        "the forged header survived: {mail}"
    );

    let ssns: String = (0..10)
        .map(|i| format!("SSN 5{}-4{}-3{:03}\r\n", 10 + i, i, 100 + i))
        .collect();
    let bulk = format!("Subject: export\r\n\r\n{ssns}");
    let (code, text) = c
        .message("lab@outside.test", &["dr@hospital.test"], bulk.as_bytes())
        .unwrap();
    assert_eq!(code, 250, "{text}");
    let id = queued_id(&text).unwrap();
    let held = sealgate_e2e::wait_for(30, "the hold", || {
        let v = g.queue_show(&id);
        (v["recipients"][0]["state"] == "quarantined").then_some(v)
    });
    assert!(
        held["recipients"][0]["verdict"]
            .to_string()
            .contains("inbound mail held by DLP policy"),
        "{held}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        g.queue().iter().all(|m| m["from"] != ""),
        "a notice went to the outside sender: {:?}",
        g.queue()
    );
    assert!(!tenant
        .mailbox()
        .iter()
        .any(|m| String::from_utf8_lossy(m).contains("Subject: export")));
    let o = g.cli(&["quarantine", "release", &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let released = sealgate_e2e::wait_for(30, "the released copy", || {
        tenant
            .mailbox()
            .into_iter()
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .find(|m| m.contains("Subject: export"))
    });
    assert!(released.contains("hipaa_pci:ssn-bulk"), "{released}");
}
