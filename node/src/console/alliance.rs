//! 联盟概览: the members and whether their nodes are seen, the last hour's block and
//! transaction rate as a chart, the newest blocks, and the open governance proposals.

use axum::extract::{Extension, State};
use axum::response::Response;
use caihong_chaincode::governance::{self, ProposalKind, ProposalStatus};
use maud::{Markup, html};

use super::stats::BlockStat;
use super::{
    Console, Nav, PageResult, ROOT, Viewer, all_members, beijing, may_member, member_of_node_key,
    needs_member, render, short, state, svg,
};

pub(super) async fn page(State(c): State<Console>, found: Option<Extension<Viewer>>) -> Response {
    render(c, found, overview).await
}

fn overview(c: &Console, viewer: &Viewer) -> PageResult {
    let view = state(c)?;
    let members = all_members(&view);
    let status = c.shared.status.read().expect("status").clone();
    let mut recent = c.recent.lock().unwrap_or_else(|p| p.into_inner());
    recent.refresh(&c.shared.store)?;
    let now = crate::chain::now_ms();
    let minutes = recent.per_minute(now);
    let (blocks_hour, txs_hour) = minutes.iter().fold((0, 0), |(b, t), m| (b + m.0, t + m.1));
    let newest: Vec<&BlockStat> = recent.blocks.iter().rev().take(10).collect();
    let height = view.height().unwrap_or(0);
    let proposals: Vec<_> = governance::proposals(&view)
        .into_iter()
        .filter(|p| p.status == ProposalStatus::Open && !p.is_expired_at(height + 1))
        .collect();
    let body = html! {
        h1 { "联盟概览" }
        p { "链 " code { (c.shared.chain_id) } " · 已提交高度 " strong #height { (height) }
            " · 最新区块时间 " (beijing(status.latest_block_time_ms)) " (北京时间)" }
        h2 { "成员单位 (" (members.len()) ")" }
        table #members {
            thead { tr {
                th scope="col" { "成员" } th scope="col" { "名称" } th scope="col" { "行政区划" }
                th scope="col" { "节点公钥 (node key)" } th scope="col" { "本节点所见" }
                th scope="col" { "已提交高度" } th scope="col" { "最近签名区块" } th scope="col" { "该区块时间" }
            } }
            tbody {
                @for m in &members {
                    @let hex = m.node_key.to_hex();
                    @let me = m.id.as_str() == c.shared.member;
                    @let online = me || status.peers.contains(&hex);
                    @let signed = recent.last_signed_by(&m.node_key.0);
                    tr {
                        td { code { (m.id.as_str()) } @if me { " (本节点)" } }
                        td { (m.name) }
                        td { (m.region_code) }
                        td { (short(&hex)) }
                        td { @if online { span.ok { "● 在线" } } @else { span.bad { "○ 未连接" } } }
                        td { @if me { (status.height) } @else { @match status.peer_heights.get(&hex) {
                            Some(h) if online => (h),
                            Some(h) => { (h) " (断开前)" },
                            None => "—",
                        } } }
                        td { @match signed {
                            Some(b) => a href={(ROOT) "/blocks/" (b.height)} { (b.height) },
                            None => span.warn { "近一小时未签名" },
                        } }
                        td { @if let Some(b) = signed { (beijing(b.time_ms)) } }
                    }
                }
            }
        }
        h2 { "近一小时出块与交易" }
        p { "共 " strong { (blocks_hour) } " 个区块、" strong { (txs_hour) } " 笔交易 (每分钟一栏, 最右为当前分钟)。" }
        (chart(&minutes))
        h2 { "最新区块" }
        @if newest.is_empty() {
            p { "尚无创世块之后的区块。" }
        } @else {
            table #recent-blocks {
                thead { tr { th scope="col" { "高度" } th scope="col" { "时间" } th scope="col" { "交易数" } th scope="col" { "出块成员" } th scope="col" { "签名成员数" } } }
                tbody {
                    @for b in &newest {
                        tr {
                            td { a href={(ROOT) "/blocks/" (b.height)} { (b.height) } }
                            td { (beijing(b.time_ms)) }
                            td { (b.txs) }
                            td { (member_of_node_key(&members, &b.proposer.0).map_or("?", |m| m.id.as_str())) }
                            td { (b.signers.len()) }
                        }
                    }
                }
            }
        }
        h2 { "待表决的治理提案" }
        @if !may_member(viewer) {
            (needs_member("治理提案"))
        } @else if proposals.is_empty() {
            p { "当前没有待表决的提案。" }
        } @else {
            table #proposals {
                thead { tr { th scope="col" { "编号" } th scope="col" { "内容" } th scope="col" { "提议成员" } th scope="col" { "表决" } th scope="col" { "截止高度" } } }
                tbody {
                    @for p in &proposals {
                        tr {
                            td { (p.id) }
                            td { (describe(&p.kind)) }
                            td { (p.proposer.as_str()) }
                            td {
                                @for (m, yes) in &p.votes {
                                    (m.as_str()) ": " @if *yes { strong { "赞成" } } @else { "反对" } " "
                                }
                                "(" (p.votes.len()) "/" (members.len()) " 已表决)"
                            }
                            td { (p.expires_height) }
                        }
                    }
                }
            }
        }
    };
    Ok(super::page(c, viewer, "联盟概览", Nav::Alliance, body))
}

fn describe(kind: &ProposalKind) -> String {
    match kind {
        ProposalKind::AddMember { .. } => "加入新成员".into(),
        ProposalKind::RemoveMember { id } => format!("移除成员 {id}"),
        ProposalKind::RotateNodeKey { member, .. } => format!("更换 {member} 的节点公钥"),
        ProposalKind::RotateAdminKey { .. } => "更换管理员公钥".into(),
        ProposalKind::SetParameter { name, value } => format!("参数 {name} 设为 {value}"),
        ProposalKind::SetEncryptionKey { member, .. } => format!("登记 {member} 的加密公钥"),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// Bars of transactions per minute, with the blocks per minute as a line; numbers only.
fn chart(minutes: &[(u64, u64)]) -> Markup {
    const W: u64 = 720;
    const H: u64 = 200;
    const PAD: u64 = 30;
    let max_txs = minutes.iter().map(|m| m.1).max().unwrap_or(0).max(1);
    let max_blocks = minutes.iter().map(|m| m.0).max().unwrap_or(0).max(1);
    let bar = (W - 2 * PAD) / 60;
    let y = |v: u64, max: u64| H - PAD - v * (H - 2 * PAD) / max;
    let mut s = format!(
        r##"<svg class="chart" id="rate-chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-labelledby="rate-title"><title id="rate-title">近一小时每分钟交易数 (柱, 最多 {max_txs}) 与区块数 (线, 最多 {max_blocks})</title>"##
    );
    s += &format!(
        r##"<line x1="{PAD}" y1="{0}" x2="{1}" y2="{0}" stroke="#4a4a4a"/>"##,
        H - PAD,
        W - PAD
    );
    let mut line = String::new();
    for (i, (blocks, txs)) in minutes.iter().enumerate() {
        let x = PAD + i as u64 * bar;
        let top = y(*txs, max_txs);
        s += &format!(
            r##"<rect x="{x}" y="{top}" width="{}" height="{}" fill="#0b4f8a"><title>{} 分钟前: {txs} 笔交易, {blocks} 个区块</title></rect>"##,
            bar.saturating_sub(1),
            H - PAD - top,
            59 - i
        );
        line += &format!("{},{} ", x + bar / 2, y(*blocks, max_blocks));
    }
    s += &format!(
        r##"<polyline points="{line}" fill="none" stroke="#b35900" stroke-width="2"/><text x="{PAD}" y="16" font-size="12" fill="#1a1a1a">交易/分钟 (最多 {max_txs})</text><text x="{}" y="16" font-size="12" fill="#b35900" text-anchor="end">区块/分钟 (最多 {max_blocks})</text><text x="{PAD}" y="{}" font-size="12" fill="#1a1a1a">60 分钟前</text><text x="{}" y="{}" font-size="12" fill="#1a1a1a" text-anchor="end">现在</text></svg>"##,
        W - PAD,
        H - 8,
        W - PAD,
        H - 8
    );
    html! {
        (svg(s))
        p.legend { span { span.swatch style="background:#0b4f8a" {} "交易/分钟 (柱)" } span { span.swatch style="background:#b35900" {} "区块/分钟 (线)" } }
    }
}
