//! The Grafana dashboard shipped in the chart queries only series that exist: the worker's
//! (listed in docs/metrics.md) and the operator's (listed in operator/src/metrics.rs), with
//! only the labels those series carry.

mod packaging_support;

use std::collections::{BTreeMap, BTreeSet};

use packaging_support::{chart_dir, workspace_root};
use regex::Regex;
use serde_json::Value;

/// A documented series: its type and labels.
#[derive(Debug)]
struct Series {
    kind: String,
    labels: BTreeSet<String>,
}

/// Reads the Markdown tables `| \`name\` | type | labels | meaning |` of a metrics page.
fn documented_series(text: &str, prefix: &str) -> BTreeMap<String, Series> {
    let row = Regex::new(r"^(?://! )?\|\s*`([a-z_]+)`\s*\|\s*([a-z]+)\s*\|([^|]*)\|").unwrap();
    let label = Regex::new(r"`([a-z_]+)`").unwrap();
    let mut series = BTreeMap::new();
    for line in text.lines() {
        if let Some(captures) = row.captures(line.trim_start())
            && captures[1].starts_with(prefix)
        {
            let labels = label
                .captures_iter(&captures[3])
                .map(|found| found[1].to_string())
                .collect();
            series.insert(
                captures[1].to_string(),
                Series {
                    kind: captures[2].to_string(),
                    labels,
                },
            );
        }
    }
    series
}

fn all_series() -> BTreeMap<String, Series> {
    let worker_doc = workspace_root().join("docs/metrics.md");
    let operator_doc = workspace_root().join("operator/src/metrics.rs");
    let mut series = documented_series(
        &std::fs::read_to_string(&worker_doc)
            .unwrap_or_else(|error| panic!("failed to read {}: {error}", worker_doc.display())),
        "juniper_cascor_worker_",
    );
    assert!(
        series.len() >= 5,
        "found only {} worker series in {}",
        series.len(),
        worker_doc.display()
    );
    let operator = documented_series(
        &std::fs::read_to_string(&operator_doc)
            .unwrap_or_else(|error| panic!("failed to read {}: {error}", operator_doc.display())),
        "cascor_operator_",
    );
    assert!(
        operator.len() >= 3,
        "found only {} operator series in {}",
        operator.len(),
        operator_doc.display()
    );
    series.extend(operator);
    series
}

fn dashboard() -> Value {
    let path = chart_dir().join("dashboards/cascor.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is invalid JSON: {error}", path.display()))
}

/// Every PromQL expression of the dashboard: panel targets and template variable queries.
fn expressions(dashboard: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            found.push(
                target["expr"]
                    .as_str()
                    .expect("a target has expr")
                    .to_string(),
            );
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if let Some(query) = variable["query"]["query"].as_str() {
            found.push(query.to_string());
        }
    }
    found
}

/// The series name an expression names, with the `_bucket`, `_sum` and `_count` suffixes of
/// histograms resolved, or an error.
fn resolve<'a>(
    name: &str,
    series: &'a BTreeMap<String, Series>,
) -> Result<(String, &'a Series), String> {
    if let Some(found) = series.get(name) {
        return Ok((name.to_string(), found));
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(found) = series.get(base)
        {
            if found.kind != "histogram" {
                return Err(format!(
                    "{name}: {base} is a {}, not a histogram",
                    found.kind
                ));
            }
            return Ok((base.to_string(), found));
        }
    }
    Err(format!("{name} is not a documented series"))
}

#[test]
fn dashboard_queries_documented_series() {
    let series = all_series();
    let name = Regex::new(r"\b((?:juniper_cascor_worker|cascor_operator)_[a-z_]+)\b").unwrap();
    let grouping = Regex::new(r"\bby \(([^)]*)\)").unwrap();
    let matcher = Regex::new(r"([a-z_]+)\s*(?:=~|!=|!~|=)\s*\x22").unwrap();
    // Labels that Prometheus adds to every scraped series, and the histogram bucket label.
    let target_labels = BTreeSet::from(["namespace", "pod", "le"]);

    let dashboard = dashboard();
    let expressions = expressions(&dashboard);
    assert!(
        expressions.len() >= 10,
        "only {} queries",
        expressions.len()
    );

    let mut used = BTreeSet::new();
    for expression in &expressions {
        let names: Vec<&str> = name
            .captures_iter(expression)
            .map(|found| found.get(1).unwrap().as_str())
            .collect();
        assert!(
            !names.is_empty(),
            "{expression}: names no worker or operator series"
        );

        let mut labels = BTreeSet::new();
        for found in &names {
            let (base, entry) =
                resolve(found, &series).unwrap_or_else(|error| panic!("{expression}: {error}"));
            labels.extend(entry.labels.iter().cloned());
            used.insert(base);
        }
        let referenced = grouping
            .captures_iter(expression)
            .flat_map(|found| {
                found[1]
                    .split(',')
                    .map(|label| label.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .chain(
                matcher
                    .captures_iter(expression)
                    .map(|found| found[1].to_string()),
            );
        for label in referenced {
            assert!(
                labels.contains(&label) || target_labels.contains(label.as_str()),
                "{expression}: label {label:?} is not a label of {names:?} ({labels:?})"
            );
        }
    }

    // Every documented series appears in at least one panel.
    let unused: Vec<&String> = series.keys().filter(|name| !used.contains(*name)).collect();
    assert!(unused.is_empty(), "series without a panel: {unused:?}");
}

#[test]
fn dashboard_panels_are_well_formed() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "juniper-cascor-fleet");
    let variables: BTreeSet<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variable| variable["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        variables,
        BTreeSet::from(["datasource", "namespace", "pod"])
    );

    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(
            ids.insert(panel["id"].as_i64().expect("numeric id")),
            "{title}: duplicate id"
        );
        let position = &panel["gridPos"];
        let right_edge = position["x"].as_i64().unwrap() + position["w"].as_i64().unwrap();
        assert!(right_edge <= 24, "{title}: wider than the 24-column grid");
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{title}: fixed data source"
            );
            assert!(
                panel["description"]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{title}: no description"
            );
        }
    }
}
