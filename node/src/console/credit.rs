//! 信用记录: the newest credit records, filtered by kind, region and decision date and paged
//! by record id (a page examines a bounded number of records, so a million-record chain
//! answers as fast as a small one); one record with its publication and penalty terms and
//! its chain proof, which the page can verify on this node.

use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use caihong_chaincode::credit::{self, CreditKind, CreditRecord, RecordView};
use caihong_chaincode::{TxOutput, TxStatus, codec, keys, types::Date};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Console, Nav, PageError, PageResult, ROOT, Viewer, on_off, render, state};

/// Records listed per page.
const PAGE: usize = 50;
/// Most records one page examines looking for matches.
const EXAMINE: usize = 5_000;

#[derive(Debug, Deserialize, Default)]
pub(super) struct ListQuery {
    kind: Option<String>,
    region: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Continue with records whose id is below this.
    before: Option<u64>,
}

struct Filter {
    kind: Option<CreditKind>,
    region: Option<String>,
    from: Option<Date>,
    to: Option<Date>,
}

fn date(text: Option<&str>, what: &str) -> Result<Option<Date>, PageError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => Date::parse_from_str(t, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| PageError::bad(format!("{what} {t:?} 不是日期: 请写成 2026-12-03"))),
    }
}

impl Filter {
    fn parse(q: &ListQuery) -> Result<Filter, PageError> {
        let kind = match q.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            None => None,
            Some(k) => Some(CreditKind::parse(k).map_err(PageError::bad)?),
        };
        let region = q
            .region
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        if let Some(r) = &region
            && (r.len() > 6 || !r.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(PageError::bad(format!(
                "行政区划 {r:?} 应为 2 至 6 位数字 (如 15 为内蒙古, 150100 为呼和浩特市)"
            )));
        }
        Ok(Filter {
            kind,
            region,
            from: date(q.from.as_deref(), "起始日期")?,
            to: date(q.to.as_deref(), "截止日期")?,
        })
    }

    fn is_empty(&self) -> bool {
        self.kind.is_none() && self.region.is_none() && self.from.is_none() && self.to.is_none()
    }

    fn keeps(&self, r: &CreditRecord) -> bool {
        self.kind.is_none_or(|k| r.kind == k)
            && self
                .region
                .as_deref()
                .is_none_or(|p| r.subject_uscc.region_code().starts_with(p))
            && self.from.is_none_or(|d| r.decision_date >= d)
            && self.to.is_none_or(|d| r.decision_date <= d)
    }
}

pub(super) async fn list(
    State(c): State<Console>,
    found: Option<Extension<Viewer>>,
    Query(q): Query<ListQuery>,
) -> Response {
    render(c, found, move |c, viewer| list_page(c, viewer, &q)).await
}

fn list_page(c: &Console, viewer: &Viewer, q: &ListQuery) -> PageResult {
    let filter = Filter::parse(q)?;
    let view = state(c)?;
    let today = caihong_chaincode::types::date_of(crate::chain::now_ms());
    let start = q.before.map(|id| keys::credit(id.saturating_sub(1)));
    let mut shown: Vec<RecordView> = Vec::new();
    let mut examined = 0usize;
    let (mut first_id, mut last_id) = (None, None);
    if q.before != Some(0) {
        // Without a filter every record shows: read one page, not the whole examined span.
        let read = if filter.is_empty() { PAGE } else { EXAMINE };
        for (_, value) in view.scan_page(b"cr/", start.as_deref(), true, read)? {
            let Ok(record) = codec::decode::<CreditRecord>(&value) else {
                continue;
            };
            examined += 1;
            first_id.get_or_insert(record.id);
            last_id = Some(record.id);
            if filter.keeps(&record) {
                if let Some(v) = credit::record_view(&view, record.id, today) {
                    shown.push(v);
                }
                if shown.len() == PAGE {
                    break;
                }
            }
        }
    }
    let more = last_id.filter(|id| *id > 1 && (shown.len() == PAGE || examined == EXAMINE));
    let next_link = more.map(|id| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("kind", &q.kind),
            ("region", &q.region),
            ("from", &q.from),
            ("to", &q.to),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                pairs.push((k, v.to_string()));
            }
        }
        pairs.push(("before", id.to_string()));
        format!(
            "{ROOT}/credit?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    });
    let total = caihong_chaincode::StateReader::get(&view, keys::CREDIT_NEXT_ID)
        .and_then(|b| codec::decode::<u64>(&b).ok())
        .map(|next| next.saturating_sub(1));
    let body = html! {
        h1 { "信用记录" }
        p { "链上共 " strong { (total.map_or("?".into(), |t| t.to_string())) } " 条信用记录, 由新到旧列出。" }
        form.filters method="get" action={(ROOT) "/credit"} {
            p {
                label for="kind" { "类别" }
                select #kind name="kind" {
                    option value="" { "全部" }
                    @for k in CreditKind::ALL {
                        option value=(k.as_str()) selected[filter.kind == Some(k)] { (k.chinese()) }
                    }
                }
            }
            p {
                label for="region" { "行政区划" }
                input #region name="region" size="8" inputmode="numeric" placeholder="如 150100" value=(q.region.clone().unwrap_or_default());
            }
            p {
                label for="from" { "决定日期自" }
                input #from type="date" name="from" value=(q.from.clone().unwrap_or_default());
            }
            p {
                label for="to" { "至" }
                input #to type="date" name="to" value=(q.to.clone().unwrap_or_default());
            }
            button type="submit" { "筛选" }
        }
        @if shown.is_empty() {
            p.notice { "本页查过的 " (examined) " 条记录中没有符合条件的。" }
        } @else {
            (records_table(&shown))
        }
        p { "本页查看了 " (examined) " 条记录"
            @if let Some(id) = last_id {
                " (编号 " (id) " 至 " (first_id.unwrap_or(id)) ")"
            } "。" }
        @if let Some(link) = next_link {
            p.pager { a href=(link) rel="next" { "更早的记录 →" } }
        }
    };
    Ok(super::page(c, viewer, "信用记录", Nav::Credit, body))
}

/// Records with their publication and penalty terms as of the view's day.
pub(super) fn records_table(records: &[RecordView]) -> Markup {
    html! {
        table.records {
            thead { tr {
                th scope="col" { "编号" } th scope="col" { "类别" } th scope="col" { "主体" }
                th scope="col" { "文书号 / 事由" } th scope="col" { "决定日期" }
                th scope="col" { "公示 (至)" } th scope="col" { "处罚期限 (至)" } th scope="col" { "记录成员" }
            } }
            tbody {
                @for v in records {
                    @let r = &v.record;
                    tr {
                        td { a href={(ROOT) "/credit/" (r.id)} { (r.id) } }
                        td { (r.kind.chinese()) }
                        td { a href={(ROOT) "/subjects/" (r.subject_uscc.as_str())} { (r.subject_name) } br; code { (r.subject_uscc.as_str()) } }
                        td { (r.document_no) br; (r.violation_type)
                            @if !r.penalty_categories.is_empty() {
                                br; (r.penalty_categories.iter().map(|p| p.chinese()).collect::<Vec<_>>().join("、"))
                            } }
                        td { (r.decision_date) }
                        td { (on_off(v.published, "公示中", "不再公示"))
                            @if let Some(d) = v.published_until { br; "至 " (d) } }
                        td { @if let Some(d) = v.penalty_until {
                                (on_off(v.penalty_in_force, "期限内", "已届满")) br; "至 " (d)
                            } @else { "—" } }
                        td { (r.recorded_by.as_str()) }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct OneQuery {
    #[serde(default)]
    verify: Option<String>,
}

pub(super) async fn one(
    State(c): State<Console>,
    found: Option<Extension<Viewer>>,
    Path(id): Path<String>,
    Query(q): Query<OneQuery>,
) -> Response {
    render(c, found, move |c, viewer| {
        record_page(c, viewer, &id, q.verify.is_some())
    })
    .await
}

fn record_page(c: &Console, viewer: &Viewer, id: &str, verify: bool) -> PageResult {
    let id: u64 = id
        .parse()
        .map_err(|_| PageError::bad(format!("记录编号 {id:?} 不是数字")))?;
    let view = state(c)?;
    let today = caihong_chaincode::types::date_of(crate::chain::now_ms());
    let v = credit::record_view(&view, id, today)
        .ok_or_else(|| PageError::not_found(format!("链上没有编号为 {id} 的信用记录")))?;
    let r = &v.record;
    let height = view.height().unwrap_or(0);
    let checks = verify.then(|| verify_record(c, r, height));
    let body = html! {
        h1 { "信用记录 " (r.id) " · " (r.kind.chinese()) }
        dl.facts {
            dt { "主体" } dd { a href={(ROOT) "/subjects/" (r.subject_uscc.as_str())} { (r.subject_name) } " " code { (r.subject_uscc.as_str()) } }
            dt { "决定文书号" } dd { (r.document_no) }
            dt { "违法行为类型" } dd { (r.violation_type) }
            dt { "依据" } dd { (r.legal_basis) }
            dt { "处罚类别" } dd { (r.penalty_categories.iter().map(|p| p.chinese()).collect::<Vec<_>>().join("、")) }
            dt { "内容" } dd { (r.content) }
            dt { "罚款" } dd { (super::yuan(r.fine_fen)) }
            dt { "决定日期" } dd { (r.decision_date) }
            dt { "处罚期限" } dd { @match v.penalty_until {
                Some(d) => { (on_off(v.penalty_in_force, "期限内", "已届满")) " 至 " (d) },
                None => "无期限类处罚",
            } }
            dt { "公示" } dd { (on_off(v.published, "公示中", "不再公示"))
                @if let Some(d) = v.published_until { " 至 " (d) } }
            @if let Some(e) = &v.ended { dt { "提前结束" } dd { (e.date) " 起, 由记录 " a href={(ROOT) "/credit/" (e.by_record)} { (e.by_record) } } }
            @if let Some(e) = &v.revoked { dt { "已撤销" } dd { (e.date) " 起, 由记录 " a href={(ROOT) "/credit/" (e.by_record)} { (e.by_record) } } }
            @if let Some(to) = r.refers_to { dt { "指向记录" } dd { a href={(ROOT) "/credit/" (to)} { (to) } } }
            dt { "决定机关" } dd { (r.authority_name) }
            dt { "记录成员" } dd { (r.recorded_by.as_str()) }
        }
        h2 { "链上证明" }
        dl.facts {
            dt { "所在区块" } dd { a href={(ROOT) "/blocks/" (r.height)} { (r.height) } }
            dt { "交易" } dd { a href={(ROOT) "/tx/" (r.tx_hash.to_hex())} { code { (r.tx_hash.to_hex()) } } }
            dt { "状态键" } dd { code { (hex::encode(keys::credit(r.id))) } }
            dt { "证明高度" } dd { (height) }
        }
        @match checks {
            None => form method="get" action={(ROOT) "/credit/" (r.id)} {
                input type="hidden" name="verify" value="1";
                button #verify type="submit" { "验证链上证明" }
            },
            Some(checks) => (show_checks(&checks)),
        }
    };
    Ok(super::page(
        c,
        viewer,
        &format!("信用记录 {}", r.id),
        Nav::Credit,
        body,
    ))
}

/// One step of a record's verification and whether it held.
pub(super) struct Check {
    pub what: String,
    pub result: Result<String, String>,
}

fn show_checks(checks: &[Check]) -> Markup {
    let all = checks.iter().all(|c| c.result.is_ok());
    html! {
        p #verdict .verdict.ok[all] .bad[!all] role="status" {
            @if all { "✔ 验证通过: 该记录确在链上, 且由联盟多数成员签名的区块所证明" }
            @else { "✘ 验证未通过" }
        }
        table #checks {
            thead { tr { th scope="col" { "检查" } th scope="col" { "结果" } } }
            tbody {
                @for ch in checks {
                    tr {
                        td { (ch.what) }
                        td { @match &ch.result {
                            Ok(detail) => { span.ok { "✔ " } (detail) },
                            Err(detail) => { span.bad { "✘ " } (detail) },
                        } }
                    }
                }
            }
        }
    }
}

/// Checks, as an outside verifier would: the record's transaction is in its block and its
/// receipt made this record; the state proof of the record at `height` against that
/// header's state root; and that header's commit certificate against the validator set.
fn verify_record(c: &Console, r: &CreditRecord, height: u64) -> Vec<Check> {
    let store = &c.shared.store;
    let mut out = Vec::new();
    let mut check = |what: &str, result: Result<String, String>| {
        out.push(Check {
            what: what.to_string(),
            result,
        })
    };
    let block = store.block(r.height).ok().flatten();
    check(
        "交易在其区块中, 区块的交易根 (txs_root) 与之相符",
        match &block {
            None => Err(format!("本节点没有高度 {} 的区块", r.height)),
            Some(b) => match b.check_txs() {
                Err(e) => Err(e.to_string()),
                Ok(hashes) if hashes.contains(&r.tx_hash) => Ok(format!(
                    "区块 {} 含交易 {}",
                    r.height,
                    &r.tx_hash.to_hex()[..16]
                )),
                Ok(_) => Err("区块中没有该交易".into()),
            },
        },
    );
    check(
        "交易回执生成了这条记录",
        match store.receipt(&r.tx_hash) {
            Ok(Some(s)) => match s.receipt.status {
                TxStatus::Success(TxOutput::CreditRecord(id)) if id == r.id => {
                    Ok(format!("回执: 记录 {id}"))
                }
                other => Err(format!("回执为 {other:?}")),
            },
            Ok(None) => Err("没有该交易的回执".into()),
            Err(e) => Err(e.to_string()),
        },
    );
    let key = keys::credit(r.id);
    let value = codec::encode(r);
    let header = store.block_summary(height).ok().flatten().map(|(h, _)| h);
    check(
        "状态证明: 记录的值在该高度的状态根 (state root) 之下",
        match (&header, store.prove(&key, height)) {
            (None, _) => Err(format!("本节点没有高度 {height} 的区块头")),
            (_, Err(e)) => Err(e.to_string()),
            (Some(h), Ok(proof)) => proof
                .verify(&h.state_root, &key, Some(&value))
                .map(|_| format!("高度 {height} 状态根 {}", &h.state_root.to_hex()[..16]))
                .map_err(|e| e.to_string()),
        },
    );
    check(
        "该高度的提交证书 (commit certificate) 由超过 2/3 的验证者签名",
        match (&header, store.commit_certificate(height)) {
            (None, _) => Err("没有区块头".into()),
            (_, Err(e)) => Err(e.to_string()),
            (_, Ok(None)) => Err(format!("本节点没有高度 {height} 的提交证书")),
            (Some(h), Ok(Some(cert))) => certificate_holds(c, h, &cert, height),
        },
    );
    out
}

fn certificate_holds(
    c: &Console,
    header: &crate::block::Header,
    cert: &caihong_consensus::CommitCertificate,
    height: u64,
) -> Result<String, String> {
    header.check_certificate(cert).map_err(|e| e.to_string())?;
    let history = c
        .shared
        .store
        .validator_history()
        .map_err(|e| e.to_string())?;
    let keys = history
        .iter()
        .rev()
        .find(|(from, _)| *from <= height)
        .map(|(_, keys)| keys.clone())
        .ok_or("没有该高度的验证者集合")?;
    let set = crate::chain::validator_set(&keys).map_err(|e| e.to_string())?;
    cert.verify(&set, &caihong_consensus::ChainId(c.shared.chain_id.clone()))
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "{} / {} 个验证者签名, 签名均有效",
        cert.signatures.len(),
        keys.len()
    ))
}
