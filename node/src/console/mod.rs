//! The web console (`/console`): the pages center staff, supervisors and the IT officer read
//! the chain through, in Chinese, server-rendered (maud) on the API's port and behind its
//! access gate. It owns presentation only: every page reads committed state through the same
//! chaincode functions and store as the JSON API, and changes nothing on chain.
//!
//! A browser cannot send a bearer token, so `/console/login` keeps one in an HTTP-only cookie
//! that the gate ([`crate::access`]) reads for console pages; callers on loopback need none.
//! What a page shows past the `public` scope (experts, extractions, proposals, metrics,
//! evidence) follows the caller's scopes ([`Viewer`]). Nothing is fetched from elsewhere:
//! the style sheet is compiled in and the chart is inline SVG.

mod alliance;
mod certificates;
mod credit;
mod experts;
mod explorer;
mod node;
mod stats;
mod subjects;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Extension, Form, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use caihong_chaincode::members::{Member, members};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use crate::access::Scope;
pub use crate::access::Viewer;
use crate::contract::route;
use crate::shared::Shared;
use crate::storage::{StateView, StorageError};

/// Where the console is served.
pub const ROOT: &str = route::CONSOLE;
const COOKIE: &str = crate::access::CONSOLE_COOKIE;

/// What the console's handlers share.
#[derive(Clone)]
pub(crate) struct Console {
    pub shared: Shared,
    pub recent: Arc<Mutex<stats::Recent>>,
    pub pools: Arc<Mutex<Option<experts::PoolCache>>>,
}

pub fn router(shared: Shared) -> Router {
    let console = Console {
        shared,
        recent: Default::default(),
        pools: Default::default(),
    };
    let at = |p: &str| format!("{ROOT}{p}");
    Router::new()
        .route(ROOT, get(alliance::page))
        .route(&at("/"), get(|| async { Redirect::to(ROOT) }))
        .route(route::CONSOLE_STYLE, get(style))
        .route(route::CONSOLE_LOGIN, get(login_page).post(login))
        .route(&at("/logout"), post(logout))
        .route(&at("/subjects"), get(subjects::search))
        .route(&at("/subjects/{uscc}"), get(subjects::one))
        .route(&at("/credit"), get(credit::list))
        .route(&at("/credit/{id}"), get(credit::one))
        .route(&at("/certificates"), get(certificates::page))
        .route(&at("/certificates/verify"), post(certificates::verify))
        .route(&at("/experts"), get(experts::page))
        .route(&at("/extractions/{id}"), get(experts::extraction))
        .route(&at("/blocks"), get(explorer::blocks))
        .route(&at("/blocks/{height}"), get(explorer::block))
        .route(&at("/tx/{hash}"), get(explorer::tx))
        .route(&at("/node"), get(node::page))
        .with_state(console)
}

/// The caller as the access gate found it (no gate, as in a bare router: no scopes).
pub(crate) fn viewer(found: Option<Extension<Viewer>>) -> Viewer {
    found.map(|Extension(v)| v).unwrap_or(Viewer {
        client: "anonymous".into(),
        scopes: Vec::new(),
    })
}

/// A page that could not be shown, as an HTML page with the reason.
#[derive(Debug)]
pub(crate) struct PageError(pub StatusCode, pub String);

impl PageError {
    pub fn bad(message: impl ToString) -> Self {
        PageError(StatusCode::BAD_REQUEST, message.to_string())
    }
    pub fn not_found(message: impl ToString) -> Self {
        PageError(StatusCode::NOT_FOUND, message.to_string())
    }
}

impl From<StorageError> for PageError {
    fn from(e: StorageError) -> Self {
        PageError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("存储读取失败: {e}"),
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.0 {
            StatusCode::NOT_FOUND => "未找到",
            StatusCode::BAD_REQUEST => "请求有误",
            _ => "出错了",
        };
        let body = html! {
            h1 { (title) }
            p.error role="alert" { (self.1) }
            p { a href=(ROOT) { "返回联盟概览" } }
        };
        (self.0, bare_page(title, body)).into_response()
    }
}

pub(crate) type PageResult = Result<Markup, PageError>;

/// Renders a page for the caller the gate found, its reads off the async threads (a page may
/// read thousands of keys).
pub(crate) async fn render(
    console: Console,
    found: Option<Extension<Viewer>>,
    work: impl FnOnce(&Console, &Viewer) -> PageResult + Send + 'static,
) -> Response {
    let viewer = viewer(found);
    match tokio::task::spawn_blocking(move || work(&console, &viewer)).await {
        Ok(Ok(page)) => page.into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The sections of the console, in the navigation's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Alliance,
    Subjects,
    Credit,
    Certificates,
    Experts,
    Blocks,
    Node,
}

impl Nav {
    const ALL: [Nav; 7] = [
        Nav::Alliance,
        Nav::Subjects,
        Nav::Credit,
        Nav::Certificates,
        Nav::Experts,
        Nav::Blocks,
        Nav::Node,
    ];

    fn label(self) -> &'static str {
        match self {
            Nav::Alliance => "联盟概览",
            Nav::Subjects => "市场主体",
            Nav::Credit => "信用记录",
            Nav::Certificates => "CA 互认",
            Nav::Experts => "专家抽取",
            Nav::Blocks => "区块与交易",
            Nav::Node => "节点状态",
        }
    }

    fn href(self) -> String {
        let tail = match self {
            Nav::Alliance => "",
            Nav::Subjects => "/subjects",
            Nav::Credit => "/credit",
            Nav::Certificates => "/certificates",
            Nav::Experts => "/experts",
            Nav::Blocks => "/blocks",
            Nav::Node => "/node",
        };
        format!("{ROOT}{tail}")
    }
}

/// A console page: navigation, who is signed in, then `body` (which starts with its `h1`).
pub(crate) fn page(c: &Console, viewer: &Viewer, title: &str, active: Nav, body: Markup) -> Markup {
    let member = &c.shared.member;
    let signed_in = viewer.client != "loopback" && viewer.client != "anonymous";
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(title))
            body {
                a.skip href="#main" { "跳到正文" }
                header.top {
                    div.brand {
                        a href=(ROOT) { "彩虹 Caihong" }
                        span.member { "成员节点: " (member) }
                    }
                    form.quick method="get" action={(ROOT) "/subjects"} role="search" {
                        label for="quick-q" { "查主体" }
                        input #quick-q type="search" name="q" placeholder="统一社会信用代码或名称";
                        button type="submit" { "查询" }
                    }
                    div.who {
                        "访问身份: " strong { (viewer.client) }
                        " (" (viewer.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) ")"
                        @if signed_in {
                            form.inline method="post" action={(ROOT) "/logout"} {
                                button type="submit" { "退出" }
                            }
                        }
                    }
                }
                nav aria-label="控制台导航" {
                    ul {
                        @for n in Nav::ALL {
                            li {
                                @if n == active {
                                    a href=(n.href()) aria-current="page" { (n.label()) }
                                } @else {
                                    a href=(n.href()) { (n.label()) }
                                }
                            }
                        }
                    }
                }
                main #main { (body) }
                footer { "彩虹联盟链控制台 · 所有数据读自本节点已提交的链上状态" }
            }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · 彩虹控制台" }
            link rel="stylesheet" href=(route::CONSOLE_STYLE);
        }
    }
}

/// A page without navigation (login, errors).
fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(title))
            body { main #main.narrow { (body) } }
        }
    }
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("style.css"),
    )
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
    why: Option<String>,
}

async fn login_page(Query(q): Query<LoginQuery>) -> Markup {
    let next = safe_next(q.next.as_deref());
    bare_page(
        "登录",
        html! {
            h1 { "彩虹控制台 · 登录" }
            @if let Some(why) = q.why.as_deref().filter(|w| !w.is_empty()) {
                p.error role="alert" { "未能打开该页面: " (why) }
            }
            p { "请输入本成员节点管理员发放的访问令牌 (API token, 由 "
                code { "caihong api-client add" } " 生成)。在节点本机 (loopback) 访问无需登录。" }
            form method="post" action=(route::CONSOLE_LOGIN) {
                input type="hidden" name="next" value=(next);
                p {
                    label for="token" { "访问令牌" }
                    input #token type="password" name="token" required autocomplete="off";
                }
                button type="submit" { "登录" }
            }
        },
    )
}

/// Only a console path: a login never sends the browser elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with(ROOT) && !n.contains("//") => n.to_string(),
        _ => ROOT.to_string(),
    }
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

/// Keeps the token in an HTTP-only cookie; the gate checks it on the next page. A form sent
/// from an `https://` page gets a `Secure` cookie, never sent over plain HTTP.
async fn login(headers: axum::http::HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let token: String = form
        .token
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != ';' && *c != ',')
        .collect();
    let https = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"));
    let secure = if https { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={token}; Path={ROOT}; HttpOnly; SameSite=Strict{secure}");
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to(&safe_next(form.next.as_deref())),
    )
        .into_response()
}

async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path={ROOT}; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to(route::CONSOLE_LOGIN),
    )
        .into_response()
}

// ---- helpers the pages share ----

/// Beijing time (UTC+8) of a Unix millisecond time: `2026-12-03 16:20:05`.
pub(crate) fn beijing(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64 + 8 * 3_600_000)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// An amount in fen as yuan with thousands separators: `500,000.00 元`.
pub(crate) fn yuan(fen: u64) -> String {
    let whole = (fen / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}.{:02} 元", fen % 100)
}

/// The first 8 hex digits of a hash or key, with the whole value in its title.
pub(crate) fn short(hex: &str) -> Markup {
    html! { code title=(hex) { (hex.get(..8).unwrap_or(hex)) "…" } }
}

/// The member whose node key this is.
pub(crate) fn member_of_node_key<'m>(all: &'m [Member], key: &[u8; 32]) -> Option<&'m Member> {
    all.iter().find(|m| &m.node_key.0 == key)
}

pub(crate) fn state(c: &Console) -> Result<StateView<'_>, PageError> {
    Ok(c.shared.store.state_view()?)
}

pub(crate) fn all_members(view: &StateView<'_>) -> Vec<Member> {
    members(view)
}

/// A section the caller's scopes do not reach.
pub(crate) fn needs_member(what: &str) -> Markup {
    html! {
        p.notice {
            (what) "需要 " code { "member" } " 权限: 请使用本成员发放的 member 范围令牌登录 ("
            a href=(route::CONSOLE_LOGIN) { "登录" } ")。"
        }
    }
}

pub(crate) fn may_member(viewer: &Viewer) -> bool {
    viewer.may(Scope::Member)
}

/// A yes/no mark with its words (never colour alone).
pub(crate) fn yes_no(ok: bool, yes: &str, no: &str) -> Markup {
    html! {
        @if ok { span.ok { "✔ " (yes) } } @else { span.bad { "✘ " (no) } }
    }
}

/// A state that is neither good nor bad (published or not, a term running or over).
pub(crate) fn on_off(on: bool, yes: &str, no: &str) -> Markup {
    html! {
        @if on { strong { "● " (yes) } } @else { span { "○ " (no) } }
    }
}

/// Raw SVG, built by a page from numbers only.
pub(crate) fn svg(markup: String) -> PreEscaped<String> {
    PreEscaped(markup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_times_read_as_people_write_them() {
        assert_eq!(yuan(50_000_000), "500,000.00 元");
        assert_eq!(yuan(2_000_005), "20,000.05 元");
        assert_eq!(yuan(99), "0.99 元");
        assert_eq!(beijing(0), "1970-01-01 08:00:00");
        assert_eq!(
            safe_next(Some("/console/credit?kind=blacklist")),
            "/console/credit?kind=blacklist"
        );
        assert_eq!(safe_next(Some("https://evil.example/console")), ROOT);
        assert_eq!(safe_next(Some("/console//evil.example")), ROOT);
    }
}
