//! 区块与交易: a small explorer. Blocks newest first, one block with its certificate and
//! its transactions' receipts (paged), one transaction by hash; a box that takes a height, a
//! block hash or a transaction hash.

use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use caihong_chaincode::{Action, Hash, SignedTransaction, TxStatus};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Console, Nav, PageError, PageResult, ROOT, Viewer, all_members, beijing, may_member,
    member_of_node_key, render, short, state,
};

const BLOCKS_PAGE: u64 = 30;
const TXS_PAGE: usize = 100;

#[derive(Debug, Deserialize, Default)]
pub(super) struct BlocksQuery {
    before: Option<u64>,
    /// A height, block hash or transaction hash to go to.
    go: Option<String>,
}

pub(super) async fn blocks(
    State(c): State<Console>,
    found: Option<Extension<Viewer>>,
    Query(q): Query<BlocksQuery>,
) -> Response {
    if let Some(go) = q.go.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
        if let Ok(height) = go.parse::<u64>() {
            return Redirect::to(&format!("{ROOT}/blocks/{height}")).into_response();
        }
        if let Ok(hash) = Hash::from_hex(go) {
            // A block hash, else a transaction.
            if let Ok(Some(height)) = c.shared.store.height_of(&hash) {
                return Redirect::to(&format!("{ROOT}/blocks/{height}")).into_response();
            }
            return Redirect::to(&format!("{ROOT}/tx/{}", hash.to_hex())).into_response();
        }
        return PageError::bad(format!(
            "{go:?} 既不是区块高度, 也不是 64 位十六进制的区块或交易哈希"
        ))
        .into_response();
    }
    render(c, found, move |c, viewer| blocks_page(c, viewer, q.before)).await
}

fn blocks_page(c: &Console, viewer: &Viewer, before: Option<u64>) -> PageResult {
    let view = state(c)?;
    let members = all_members(&view);
    let latest = view.height().unwrap_or(0);
    let top = before.map_or(latest, |b| b.saturating_sub(1).min(latest));
    let first = c.shared.store.first_block()?.max(1);
    let mut rows = Vec::new();
    let mut h = top;
    while h >= first && rows.len() < BLOCKS_PAGE as usize {
        if let Some((header, txs)) = c.shared.store.block_summary(h)? {
            rows.push((header, txs));
        }
        h -= 1;
    }
    let older = rows.last().map(|(hd, _)| hd.height).filter(|h| *h > first);
    let body = html! {
        h1 { "区块与交易" }
        (go_form())
        table #blocks {
            thead { tr { th scope="col" { "高度" } th scope="col" { "时间" } th scope="col" { "交易数" } th scope="col" { "出块成员" } th scope="col" { "区块哈希" } } }
            tbody {
                @for (hd, txs) in &rows {
                    tr {
                        td { a href={(ROOT) "/blocks/" (hd.height)} { (hd.height) } }
                        td { (beijing(hd.time_ms)) }
                        td { (txs) }
                        td { (member_of_node_key(&members, &hd.proposer.0).map_or("?", |m| m.id.as_str())) }
                        td { (short(&hd.hash().to_hex())) }
                    }
                }
            }
        }
        @if let Some(h) = older {
            p.pager { a rel="next" href={(ROOT) "/blocks?before=" (h)} { "更早的区块 →" } }
        }
    };
    Ok(super::page(c, viewer, "区块与交易", Nav::Blocks, body))
}

fn go_form() -> Markup {
    html! {
        form.filters method="get" action={(ROOT) "/blocks"} role="search" {
            p {
                label for="go" { "区块高度、区块哈希或交易哈希" }
                input #go type="search" name="go" size="66";
            }
            button type="submit" { "前往" }
        }
    }
}

/// `Credit::Record`: the action's module and variant.
fn action_kind(action: &Action) -> String {
    match serde_json::to_value(action) {
        Ok(serde_json::Value::Object(outer)) => outer
            .iter()
            .next()
            .map(|(module, inner)| match inner {
                serde_json::Value::Object(o) => match o.keys().next() {
                    Some(variant) => format!("{module}::{variant}"),
                    None => module.clone(),
                },
                serde_json::Value::String(variant) => format!("{module}::{variant}"),
                _ => module.clone(),
            })
            .unwrap_or_default(),
        _ => "?".into(),
    }
}

fn status_cell(status: Option<&TxStatus>) -> Markup {
    html! {
        @match status {
            Some(TxStatus::Success(_)) => span.ok { "✔ 成功" },
            Some(TxStatus::Failed(e)) => { span.bad { "✘ " (e.code.as_str()) } " " (e.message) },
            None => span.warn { "无回执 (重复包含)" },
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct BlockQuery {
    page: Option<usize>,
}

pub(super) async fn block(
    State(c): State<Console>,
    found: Option<Extension<Viewer>>,
    Path(height): Path<String>,
    Query(q): Query<BlockQuery>,
) -> Response {
    render(c, found, move |c, viewer| {
        block_page(c, viewer, &height, q.page.unwrap_or(0))
    })
    .await
}

fn block_page(c: &Console, viewer: &Viewer, height: &str, page: usize) -> PageResult {
    let height: u64 = height
        .parse()
        .map_err(|_| PageError::bad(format!("区块高度 {height:?} 不是数字")))?;
    let store = &c.shared.store;
    let block = store
        .block(height)?
        .ok_or_else(|| PageError::not_found(format!("本节点没有高度 {height} 的区块")))?;
    let cert = store.commit_certificate(height)?;
    let view = state(c)?;
    let members = all_members(&view);
    let h = &block.header;
    let pages = block.txs.len().div_ceil(TXS_PAGE).max(1);
    let page = page.min(pages - 1);
    let shown: Vec<(usize, &SignedTransaction)> = block
        .txs
        .iter()
        .enumerate()
        .skip(page * TXS_PAGE)
        .take(TXS_PAGE)
        .collect();
    let mut receipts = Vec::with_capacity(shown.len());
    for (i, tx) in &shown {
        let r = store
            .receipt(&tx.hash())?
            .filter(|r| r.location.height == height && r.location.index as usize == *i);
        receipts.push(r.map(|r| r.receipt.status));
    }
    let body = html! {
        h1 { "区块 " (height) }
        dl.facts {
            dt { "区块哈希" } dd { code { (block.hash().to_hex()) } }
            dt { "时间" } dd { (beijing(h.time_ms)) }
            dt { "上一区块" } dd { @if height > 0 { a href={(ROOT) "/blocks/" (height - 1)} { (height - 1) } } " " code { (h.parent_hash.to_hex()) } }
            dt { "出块成员" } dd { (member_of_node_key(&members, &h.proposer.0).map_or("?".to_string(), |m| m.id.as_str().to_string())) }
            dt { "状态根 (state root)" } dd { code { (h.state_root.to_hex()) } }
            dt { "交易根 (txs root)" } dd { code { (h.txs_root.to_hex()) } }
            dt { "回执根 (receipts root)" } dd { code { (h.receipts_root.to_hex()) } }
            dt { "提交证书" } dd { @match &cert {
                Some(c) => { "轮次 " (c.round) ", 签名成员: "
                    (c.signatures.iter().map(|s| member_of_node_key(&members, &s.validator.0).map_or("?".to_string(), |m| m.id.as_str().to_string())).collect::<Vec<_>>().join(", ")) },
                None => "无 (创世块)",
            } }
        }
        h2 { "交易 (" (block.txs.len()) ")" }
        @if block.txs.is_empty() { p { "本区块没有交易。" } } @else {
            table #txs {
                thead { tr { th scope="col" { "序号" } th scope="col" { "交易哈希" } th scope="col" { "操作" } th scope="col" { "签名者" } th scope="col" { "结果" } } }
                tbody {
                    @for ((i, tx), status) in shown.iter().zip(&receipts) {
                        tr {
                            td { (i) }
                            td { a href={(ROOT) "/tx/" (tx.hash().to_hex())} { code { (&tx.hash().to_hex()[..16]) "…" } } }
                            td { (action_kind(&tx.tx.action)) }
                            td { (short(&tx.tx.signer.to_hex())) }
                            td { (status_cell(status.as_ref())) }
                        }
                    }
                }
            }
            @if pages > 1 {
                p.pager {
                    "第 " (page + 1) " / " (pages) " 页 "
                    @if page > 0 { a rel="prev" href={(ROOT) "/blocks/" (height) "?page=" (page - 1)} { "← 上一页" } }
                    @if page + 1 < pages { a rel="next" href={(ROOT) "/blocks/" (height) "?page=" (page + 1)} { "下一页 →" } }
                }
            }
        }
        (go_form())
    };
    Ok(super::page(
        c,
        viewer,
        &format!("区块 {height}"),
        Nav::Blocks,
        body,
    ))
}

pub(super) async fn tx(
    State(c): State<Console>,
    found: Option<Extension<Viewer>>,
    Path(hash): Path<String>,
) -> Response {
    render(c, found, move |c, viewer| tx_page(c, viewer, &hash)).await
}

fn tx_page(c: &Console, viewer: &Viewer, hash: &str) -> PageResult {
    let hash =
        Hash::from_hex(hash).map_err(|e| PageError::bad(format!("交易哈希 {hash:?} 无效: {e}")))?;
    let store = &c.shared.store;
    let stored = store.tx(&hash)?;
    let receipt = store.receipt(&hash)?;
    let pending = stored.is_none() && c.shared.mempool.lock().expect("mempool").contains(&hash);
    let Some(stored) = stored else {
        return Err(PageError::not_found(if pending {
            format!("交易 {hash} 在交易池中, 尚未提交")
        } else {
            format!("交易 {hash} 既未提交也不在交易池中")
        }));
    };
    let t = &stored.tx.tx;
    // Expert actions carry personal details, governance actions what `member` reads of
    // proposals: shown to `member` callers only.
    let personal =
        matches!(t.action, Action::Expert(_) | Action::Governance(_)) && !may_member(viewer);
    let action = if personal {
        None
    } else {
        serde_json::to_string_pretty(&t.action).ok()
    };
    let body = html! {
        h1 { "交易 " code { (&hash.to_hex()[..16]) "…" } }
        dl.facts {
            dt { "交易哈希" } dd { code { (hash.to_hex()) } }
            dt { "区块" } dd { a href={(ROOT) "/blocks/" (stored.location.height)} { (stored.location.height) } " 第 " (stored.location.index) " 笔" }
            dt { "签名者" } dd { code { (t.signer.to_hex()) } }
            dt { "序号 (nonce)" } dd { (t.nonce) }
            dt { "操作" } dd { (action_kind(&t.action)) }
            dt { "结果" } dd { (status_cell(receipt.as_ref().map(|r| &r.receipt.status))) }
            @if let Some(TxStatus::Success(out)) = receipt.as_ref().map(|r| &r.receipt.status) {
                dt { "输出" } dd { code { (serde_json::to_string(out).unwrap_or_default()) } }
            }
        }
        h2 { "操作内容" }
        @match action {
            Some(a) => pre #action { code { (a) } },
            None => (super::needs_member("专家与治理操作的内容")),
        }
    };
    Ok(super::page(c, viewer, "交易", Nav::Blocks, body))
}
