//! The catalog's widget: search results as cards, an item's detail, "load more".
//!
//! The HTML is built from `web/src/catalog/` by `cargo xtask widget` (esbuild),
//! committed as `web/dist/catalog.html` and embedded here, so a build of Wharf
//! needs no Node. It makes no network request of its own, so its CSP lists no
//! domains.

use wharf_core::Widget;

/// The built widget, one self-contained HTML file.
pub const CATALOG_HTML: &str = include_str!("../../../web/dist/catalog.html");

/// Where the widget is published.
pub const CATALOG_WIDGET_URI: &str = "ui://wharf/catalog.html";

/// The catalog widget, to register with `AppBuilder::widget`; `search_items`
/// and `get_item` render with it.
pub fn widget() -> Widget {
    Widget::new(CATALOG_WIDGET_URI, "catalog-widget", CATALOG_HTML)
        .title("Catalog results")
        .description(
            "Shows the matching catalog items as cards the user can open for details, \
             page through, and ask about. Do not repeat the list in your reply; summarise or answer the question.",
        )
        .prefers_border(true)
}
