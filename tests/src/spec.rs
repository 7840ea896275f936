//! LoadTest documents for the system tests, built instead of written out as YAML in each test.

/// A Produce LoadTest on its own topic (created with `partitions`, replication 1), of `agents`
/// agents at `rate` records/s of `size`-byte values for `secs` seconds, 1 s report interval.
#[derive(Debug, Clone)]
pub struct ProduceSpec {
    name: String,
    topic: String,
    bootstrap: String,
    partitions: u32,
    rate: u32,
    secs: u32,
    agents: u32,
    size: u32,
    /// `report.window`, seconds.
    window: Option<u32>,
    /// `topic.cleanup: DeleteIfCreated`.
    delete_if_created: bool,
    thresholds: Vec<String>,
}

impl ProduceSpec {
    /// 1 agent, 100 records/s of 100 bytes for 10 s, 1 partition, no thresholds.
    pub fn new(name: &str, topic: &str, bootstrap: &str) -> ProduceSpec {
        ProduceSpec {
            name: name.to_string(),
            topic: topic.to_string(),
            bootstrap: bootstrap.to_string(),
            partitions: 1,
            rate: 100,
            secs: 10,
            agents: 1,
            size: 100,
            window: None,
            delete_if_created: false,
            thresholds: Vec::new(),
        }
    }

    /// Rolling window reports of `secs` seconds (`report.window`).
    pub fn window(mut self, secs: u32) -> ProduceSpec {
        self.window = Some(secs);
        self
    }

    /// Deletes the topic at the end when the run created it (`topic.cleanup`).
    pub fn delete_if_created(mut self) -> ProduceSpec {
        self.delete_if_created = true;
        self
    }

    pub fn rate(mut self, rate: u32) -> ProduceSpec {
        self.rate = rate;
        self
    }

    pub fn secs(mut self, secs: u32) -> ProduceSpec {
        self.secs = secs;
        self
    }

    pub fn agents(mut self, agents: u32) -> ProduceSpec {
        self.agents = agents;
        self
    }

    pub fn partitions(mut self, partitions: u32) -> ProduceSpec {
        self.partitions = partitions;
        self
    }

    /// Adds a threshold, e.g. `errors.ratio < 1%`.
    pub fn threshold(mut self, threshold: &str) -> ProduceSpec {
        self.thresholds.push(threshold.to_string());
        self
    }

    /// The document, as YAML.
    pub fn yaml(&self) -> String {
        let thresholds: String = if self.thresholds.is_empty() {
            String::new()
        } else {
            let items: String = self
                .thresholds
                .iter()
                .map(|t| format!("    - \"{t}\"\n"))
                .collect();
            format!("  thresholds:\n{items}")
        };
        let cleanup = if self.delete_if_created {
            "    cleanup: DeleteIfCreated\n"
        } else {
            ""
        };
        let window = self
            .window
            .map(|w| format!("    window: {w}s\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: barrage.dev/v1alpha1
kind: LoadTest
metadata:
  name: {name}
spec:
  kafka:
    bootstrapServers: {bootstrap}
  topic:
    name: {topic}
    create:
      partitions: {partitions}
      replicationFactor: 1
{cleanup}  workload:
    kind: Produce
    records:
      value:
        size: {size}
  load:
    steps:
      - constant: {{rate: {rate}, for: {secs}s}}
  agents:
    count: {agents}
  report:
    interval: 1s
{window}{thresholds}",
            name = self.name,
            bootstrap = self.bootstrap,
            topic = self.topic,
            partitions = self.partitions,
            size = self.size,
            rate = self.rate,
            secs = self.secs,
            agents = self.agents,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_parses_as_the_load_test_it_describes() {
        let yaml = ProduceSpec::new("t", "topic-t", "127.0.0.1:9092")
            .rate(150)
            .secs(3)
            .agents(2)
            .partitions(3)
            .threshold("errors.ratio < 1%")
            .window(2)
            .delete_if_created()
            .yaml();
        let lt = barrage_crds::validate::parse_and_validate(&yaml)
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(lt.spec.agents.count, 2);
        assert_eq!(lt.spec.load.expected_records(), 450);
        assert_eq!(lt.spec.thresholds.len(), 1);
        assert_eq!(lt.spec.topic.name, "topic-t");
        assert_eq!(lt.spec.report.window.map(|w| w.as_std().as_secs()), Some(2));
        assert_eq!(
            lt.spec.topic.cleanup,
            barrage_crds::spec::TopicCleanup::DeleteIfCreated
        );
    }
}
