//! The OpenAPI 3.1 description served at `/api/openapi.json`, generated:
//! each route's operation from its handler's `#[utoipa::path]`, the
//! schemas from the types the handlers serialize (`ToSchema`), and the
//! routes and the document from one list ([`super::routes`], utoipa-axum),
//! so that a route cannot be served undescribed. Built once.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The document's frame: info, tags, the security scheme.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "worldpool API",
        description = "Status and control of the worldpool process pool, and the data API of the system it replaces (tag `compatibility`). Read endpoints need no credentials. Errors are always `{error, message, status}`."
    ),
    modifiers(&Bearer),
    tags(
        (name = "compatibility", description = "The data API of the system worldpool replaces, in its shapes."),
        (name = "vip", description = "Watched players."),
        (name = "makers", description = "Makers: characters tied to a main character."),
        (name = "uploads", description = "CSV imports over HTTP."),
    )
)]
pub(super) struct ApiDoc;

/// The `bearer` scheme the control endpoints name.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("The value of WORLDPOOL_API_TOKEN."))
                        .build(),
                ),
            );
    }
}

/// The document as JSON bytes.
pub fn document() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::to_vec(&super::routes().into_openapi()).unwrap_or_else(|_| b"{}".to_vec())
    })
}
