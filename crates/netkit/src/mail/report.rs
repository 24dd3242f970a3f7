//! `mail send --json`: the session's events gathered into one JSON object
//! printed at the end: per delivery each stage with the commands sent, the
//! server's replies and its duration, the TLS version, the recipients'
//! fates and the queue ID from the final reply. Durations are milliseconds
//! as floats; names are snake_case.

use std::time::Instant;

use serde_json::{Value, json};
use smtp::{Event, Observer, Reply, ReplyParser, Stage};

#[derive(Debug)]
pub struct JsonReport {
    started: Instant,
    deliveries: Vec<Value>,
    current: Option<DeliveryLog>,
}

#[derive(Debug)]
struct DeliveryLog {
    domain: Option<String>,
    started: Instant,
    stages: Vec<StageLog>,
    tls: Option<Value>,
    parser: ReplyParser,
}

#[derive(Debug)]
struct StageLog {
    name: String,
    started: Instant,
    elapsed_ms: Option<f64>,
    sent: Vec<String>,
    replies: Vec<Value>,
    notes: Vec<String>,
    /// Message bytes, for the message stage (its lines are not listed).
    bytes: Option<u64>,
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

fn reply_json(reply: &Reply) -> Value {
    json!({ "code": reply.code.value(), "lines": reply.lines })
}

fn stage_name(stage: Stage) -> String {
    stage.to_string().to_ascii_lowercase()
}

impl StageLog {
    fn new(name: String) -> Self {
        Self {
            name,
            started: Instant::now(),
            elapsed_ms: None,
            sent: Vec::new(),
            replies: Vec::new(),
            notes: Vec::new(),
            bytes: None,
        }
    }

    fn close(&mut self) {
        self.elapsed_ms
            .get_or_insert_with(|| ms_since(self.started));
    }

    fn to_json(&self) -> Value {
        let mut stage = json!({
            "stage": self.name,
            "elapsed_ms": self.elapsed_ms,
            "sent": self.sent,
            "replies": self.replies,
            "notes": self.notes,
        });
        if let Some(bytes) = self.bytes {
            stage["message_bytes"] = json!(bytes);
        }
        stage
    }
}

impl DeliveryLog {
    fn stage(&mut self) -> &mut StageLog {
        if self.stages.is_empty() {
            self.stages.push(StageLog::new(stage_name(Stage::Connect)));
        }
        self.stages.last_mut().expect("one stage at least")
    }

    fn enter(&mut self, name: String) {
        if let Some(last) = self.stages.last_mut() {
            last.close();
        }
        self.stages.push(StageLog::new(name));
    }
}

impl Default for JsonReport {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            deliveries: Vec::new(),
            current: None,
        }
    }
}

impl JsonReport {
    /// A delivery begins: to `--server` (no domain) or to a domain's MX.
    pub fn begin(&mut self, domain: Option<&str>) {
        self.current = Some(DeliveryLog {
            domain: domain.map(str::to_owned),
            started: Instant::now(),
            stages: Vec::new(),
            tls: None,
            parser: ReplyParser::new(),
        });
    }

    /// The delivery ends with the server's verdict or a failure.
    pub fn end(&mut self, outcome: &Result<smtp::Delivery, smtp::Error>) {
        let Some(mut log) = self.current.take() else {
            return;
        };
        if let Some(last) = log.stages.last_mut() {
            last.close();
        }
        let mut delivery = json!({
            "domain": log.domain,
            "elapsed_ms": ms_since(log.started),
            "stages": log.stages.iter().map(StageLog::to_json).collect::<Vec<_>>(),
            "tls": log.tls,
        });
        match outcome {
            Ok(done) => {
                delivery["ok"] = json!(true);
                delivery["accepted"] = json!(
                    done.accepted
                        .iter()
                        .map(|m| m.address.as_str())
                        .collect::<Vec<_>>()
                );
                delivery["rejected"] = json!(
                    done.rejected
                        .iter()
                        .map(|(m, reply)| json!({ "recipient": m.address, "reply": reply_json(reply) }))
                        .collect::<Vec<_>>()
                );
                delivery["reply"] = reply_json(&done.reply);
                delivery["queue_id"] = json!(done.queue_id());
                delivery["error"] = Value::Null;
            }
            Err(err) => {
                delivery["ok"] = json!(false);
                delivery["error"] = json!({
                    "stage": stage_name(err.stage),
                    "message": err.to_string(),
                });
            }
        }
        self.deliveries.push(delivery);
    }

    /// The whole report, once every delivery has ended.
    pub fn finish(self, exit_code: u8) -> Value {
        json!({
            "ok": exit_code == 0,
            "exit_code": exit_code,
            "elapsed_ms": ms_since(self.started),
            "deliveries": self.deliveries,
        })
    }
}

impl Observer for JsonReport {
    fn event(&mut self, event: Event) {
        let Some(log) = self.current.as_mut() else {
            return;
        };
        match event {
            Event::Stage(stage) => log.enter(stage_name(stage)),
            Event::Quit => log.enter("quit".to_owned()),
            Event::Note(text) | Event::Warning(text) => log.stage().notes.push(text),
            Event::Sent { line, .. } => {
                let stage = log.stage();
                if stage.name != stage_name(Stage::Message) {
                    stage.sent.push(line);
                }
            }
            Event::Received { line, .. } => match log.parser.push(line.as_bytes()) {
                Ok(Some(reply)) => log.stage().replies.push(reply_json(&reply)),
                Ok(None) => {}
                // The session itself fails on it and says why.
                Err(_) => log.parser = ReplyParser::new(),
            },
            Event::Progress { total, .. } => log.stage().bytes = Some(total),
            Event::TlsStarted { version, cipher } => {
                log.tls = Some(json!({ "version": version, "cipher": cipher }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_stages_with_replies() {
        let mut report = JsonReport::default();
        report.begin(None);
        for event in [
            Event::Stage(Stage::Connect),
            Event::Note("Trying 127.0.0.1:25...".into()),
            Event::Stage(Stage::Greeting),
            Event::Received {
                line: "220 mx ready".into(),
                tls: false,
            },
            Event::Stage(Stage::Ehlo),
            Event::Sent {
                line: "EHLO me".into(),
                tls: false,
            },
            Event::Received {
                line: "250-mx".into(),
                tls: false,
            },
            Event::Received {
                line: "250 SIZE 100".into(),
                tls: false,
            },
            Event::TlsStarted {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_128_GCM_SHA256".into(),
            },
        ] {
            report.event(event);
        }
        report.end(&Err(smtp::Error::new(Stage::Ehlo, smtp::ErrorKind::Closed)));
        let json = report.finish(22);
        assert_eq!(json["exit_code"], 22);
        let delivery = &json["deliveries"][0];
        let stages = delivery["stages"].as_array().unwrap();
        let names: Vec<&str> = stages
            .iter()
            .map(|s| s["stage"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["connect", "greeting", "ehlo"]);
        assert_eq!(stages[0]["notes"][0], "Trying 127.0.0.1:25...");
        assert_eq!(
            stages[2]["replies"][0],
            json!({ "code": 250, "lines": ["mx", "SIZE 100"] })
        );
        assert_eq!(stages[2]["sent"][0], "EHLO me");
        assert!(stages.iter().all(|s| s["elapsed_ms"].is_f64()));
        assert_eq!(delivery["tls"]["version"], "TLSv1.3");
        assert_eq!(delivery["error"]["stage"], "ehlo");
        assert_eq!(delivery["ok"], false);
    }
}
