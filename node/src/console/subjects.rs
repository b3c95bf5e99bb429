//! 市场主体: search by USCC or by a fragment of the name (the store's bigram name index),
//! and one subject: may it bid today (失信限制) and which records decide it, its versions and
//! hand-overs, and its credit records with their publication and penalty terms.

use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use caihong_chaincode::subjects::{self, Subject, SubjectStatus};
use caihong_chaincode::{Uscc, credit};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Console, Nav, PageError, PageResult, ROOT, Viewer, render, state};
use crate::storage::StateView;
use crate::storage::names::{MAX_QUERY_CHARS, NameHits, NameMatch};

/// Names listed per page (each section).
const PAGE: usize = 50;

#[derive(Debug, Deserialize, Default)]
pub(super) struct SearchQuery {
    q: Option<String>,
    /// `prefix`: only the names that start with `q` (the first page shows both lists).
    mode: Option<String>,
    /// Continue the list after this USCC.
    after: Option<String>,
}

pub(super) async fn search(
    State(c): State<Console>,
    found: Option<Extension<Viewer>>,
    Query(q): Query<SearchQuery>,
) -> Response {
    let text = q.q.as_deref().map(str::trim).unwrap_or("");
    // A whole USCC goes straight to its subject.
    if let Ok(uscc) = Uscc::parse(text) {
        return Redirect::to(&format!("{ROOT}/subjects/{}", uscc.as_str())).into_response();
    }
    render(c, found, move |c, viewer| search_page(c, viewer, &q)).await
}

fn status_text(s: SubjectStatus) -> &'static str {
    match s {
        SubjectStatus::Active => "正常",
        SubjectStatus::Suspended => "暂停",
        SubjectStatus::Deregistered => "注销",
    }
}

fn hits_table(view: &StateView<'_>, hits: &NameHits, id: &str) -> Markup {
    let found: Vec<Subject> = hits
        .usccs
        .iter()
        .filter_map(|u| Uscc::parse(u).ok())
        .filter_map(|u| subjects::subject(view, &u))
        .collect();
    html! {
        table id=(id) {
            thead { tr { th scope="col" { "名称" } th scope="col" { "统一社会信用代码" } th scope="col" { "行政区划" } th scope="col" { "状态" } th scope="col" { "所属成员" } } }
            tbody {
                @for s in &found {
                    tr {
                        td { a href={(ROOT) "/subjects/" (s.uscc.as_str())} { (s.name) } }
                        td { code { (s.uscc.as_str()) } }
                        td { (s.region_code) }
                        td { (status_text(s.status)) }
                        td { (s.home.as_str()) }
                    }
                }
            }
        }
    }
}

fn search_page(c: &Console, viewer: &Viewer, q: &SearchQuery) -> PageResult {
    let text = q.q.as_deref().map(str::trim).unwrap_or("");
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(PageError::bad(format!(
            "查询有 {} 个字, 最多 {MAX_QUERY_CHARS} 个: 请输入名称的一个片段",
            text.chars().count()
        )));
    }
    let view = state(c)?;
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    let prefix_only = q.mode.as_deref() == Some("prefix");
    // The names that start with the text lead; the second list has the others that contain
    // it. A next page continues one list.
    let (starts, inside) = if text.is_empty() {
        (None, None)
    } else if prefix_only {
        let hits = view.search_subject_names(text, NameMatch::StartsWith, after, PAGE)?;
        (Some(hits), None)
    } else {
        let starts = match after {
            None => Some(view.search_subject_names(text, NameMatch::StartsWith, None, PAGE)?),
            Some(_) => None,
        };
        let inside = view.search_subject_names(text, NameMatch::Inside, after, PAGE)?;
        (starts, Some(inside))
    };
    let next = |mode: &str, hits: &NameHits| {
        hits.more_after.as_ref().map(|after| {
            let mut pairs = vec![("q", text), ("after", after.as_str())];
            if mode == "prefix" {
                pairs.push(("mode", "prefix"));
            }
            format!(
                "{ROOT}/subjects?{}",
                serde_urlencoded::to_string(pairs).unwrap_or_default()
            )
        })
    };
    let body = html! {
        h1 { "市场主体查询" }
        form.filters method="get" action={(ROOT) "/subjects"} role="search" {
            p {
                label for="q" { "统一社会信用代码或名称" }
                input #q type="search" name="q" size="40" value=(text) placeholder="如 鄂尔多斯、建工 或 18 位代码";
            }
            button type="submit" { "查询" }
        }
        p { "名称可输入任意片段 (一个字以上); 全角与半角、大小写视为相同。输入完整的 18 位统一社会信用代码直接打开该主体。" }
        @if let Some(starts) = &starts {
            h2 { "名称以 “" (text) "” 开头" }
            @if starts.usccs.is_empty() { p { "无。" } } @else { (hits_table(&view, starts, "starts-with")) }
            @if let Some(link) = next("prefix", starts) {
                p.pager { a rel="next" href=(link) { "更多以 “" (text) "” 开头的 →" } }
            }
        }
        @if let Some(inside) = &inside {
            h2 { "名称中含有 “" (text) "”" }
            @if inside.usccs.is_empty() {
                p #no-hits { "没有其他名称含有 “" (text) "” 的主体。" }
            } @else {
                (hits_table(&view, inside, "contains"))
            }
            @if let Some(link) = next("inside", inside) {
                p.pager { a rel="next" href=(link) { "下一页 →" } }
            }
        }
        @if starts.as_ref().is_some_and(|h| h.stopped) || inside.as_ref().is_some_and(|h| h.stopped) {
            p.notice { "匹配太多, 已停止查找: 请输入更长的名称片段。" }
        }
    };
    Ok(super::page(c, viewer, "市场主体查询", Nav::Subjects, body))
}

pub(super) async fn one(
    State(c): State<Console>,
    found: Option<Extension<Viewer>>,
    Path(uscc): Path<String>,
) -> Response {
    render(c, found, move |c, viewer| subject_page(c, viewer, &uscc)).await
}

fn subject_page(c: &Console, viewer: &Viewer, uscc: &str) -> PageResult {
    let uscc = Uscc::parse(uscc)
        .map_err(|e| PageError::bad(format!("统一社会信用代码 {uscc:?} 无效: {e}")))?;
    let view = state(c)?;
    let s = subjects::subject(&view, &uscc)
        .ok_or_else(|| PageError::not_found(format!("链上没有统一社会信用代码为 {uscc} 的主体")))?;
    let now = crate::chain::now_ms();
    let today = caihong_chaincode::types::date_of(now);
    let restriction = credit::restriction(&view, &uscc, now);
    let history = subjects::history(&view, &uscc);
    let records = credit::records_for(&view, &uscc, today);
    let body = html! {
        h1 { (s.name) }
        section aria-labelledby="may-bid" {
            h2 #may-bid { "今日 (" (today) ") 可否参与投标 · 失信限制" }
            @if restriction.barred {
                p #bid-answer .verdict.bad role="status" { "✘ 受限: 不得参与投标 (一处失信、处处受限)" }
                p { "以下 " (restriction.records.len()) " 条记录决定了这一结论:" }
                ul {
                    @for r in &restriction.records {
                        li { a href={(ROOT) "/credit/" (r.id)} { "记录 " (r.id) } " · " (r.kind.chinese()) " · " (r.document_no)
                            @if let Some(end) = r.penalty_term_end() { " · 处罚期限至 " (end) } }
                    }
                }
            } @else {
                p #bid-answer .verdict.ok role="status" { "✔ 不受限: 没有公示中的黑名单, 也没有期限内的暂停或取消投标资格" }
            }
        }
        h2 { "主体信息" }
        dl.facts {
            dt { "统一社会信用代码" } dd { code { (s.uscc.as_str()) } }
            dt { "角色" } dd { (s.roles.iter().map(|r| r.chinese()).collect::<Vec<_>>().join("、")) }
            dt { "法定代表人" } dd { (s.legal_representative) }
            dt { "行政区划" } dd { (s.region_code) }
            dt { "状态" } dd { (status_text(s.status)) }
            dt { "所属成员" } dd { (s.home.as_str()) }
            dt { "版本" } dd { (s.version) " (高度 " a href={(ROOT) "/blocks/" (s.height)} { (s.height) } ")" }
        }
        @if !s.qualifications.is_empty() {
            h2 { "资质" }
            table {
                thead { tr { th scope="col" { "名称" } th scope="col" { "等级" } th scope="col" { "证书号" } th scope="col" { "有效期至" } } }
                tbody { @for q in &s.qualifications { tr { td { (q.name) } td { (q.level) } td { (q.certificate_no) } td { (q.valid_until) } } } }
            }
        }
        h2 { "信用记录 (" (records.len()) ")" }
        @if records.is_empty() { p { "没有信用记录。" } } @else { (super::credit::records_table(&records)) }
        h2 { "版本与移交" }
        table #versions {
            thead { tr { th scope="col" { "版本" } th scope="col" { "名称" } th scope="col" { "状态" } th scope="col" { "所属成员" } th scope="col" { "区块" } th scope="col" { "交易" } } }
            tbody {
                @for (i, v) in history.iter().enumerate() {
                    @let handed = i > 0 && history[i - 1].home != v.home;
                    tr {
                        td { (v.version) }
                        td { (v.name) }
                        td { (status_text(v.status)) }
                        td { (v.home.as_str()) @if handed { " " strong { "(由 " (history[i - 1].home.as_str()) " 移交)" } } }
                        td { a href={(ROOT) "/blocks/" (v.height)} { (v.height) } }
                        td { a href={(ROOT) "/tx/" (v.tx_hash.to_hex())} { code { (&v.tx_hash.to_hex()[..8]) "…" } } }
                    }
                }
            }
        }
    };
    Ok(super::page(c, viewer, &s.name, Nav::Subjects, body))
}
