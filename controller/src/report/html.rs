//! `report.html`
use super::json::Report;
/// Renders.
pub fn render(report: &Report) -> String {
    format!("{}", report.schema)
}
