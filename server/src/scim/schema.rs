//! SCIM attribute metadata (RFC 7643 §2, §4, §7, §8.7) for the resources this server exposes.
//!
//! Everything here is static data: the filter evaluator, the PATCH applier, the projection of
//! `attributes`/`excludedAttributes` and the `/Schemas` endpoint all read the same definitions, so
//! a change of case sensitivity or mutability is made in one place.

use serde_json::{Map, Value, json};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttributeDef],
    pub description: &'static str,
}

impl AttributeDef {
    /// The RFC 7643 §2.2 defaults; the builders below change only what differs, which keeps the
    /// tables readable.
    const fn new(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        AttributeDef {
            name,
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
            description,
        }
    }
    const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    const fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    const fn unique(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }
    const fn refs(mut self, types: &'static [&'static str]) -> Self {
        self.reference_types = types;
        self
    }
    const fn subs(mut self, subs: &'static [AttributeDef]) -> Self {
        self.sub_attributes = subs;
        self
    }

    /// Case-insensitive lookup of a sub-attribute (RFC 7643 §2.1: names are case-insensitive).
    pub fn sub(&self, name: &str) -> Option<&'static AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    pub fn is_complex(&self) -> bool {
        self.ty == AttrType::Complex
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttributeDef],
}

impl SchemaDef {
    pub fn attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

use AttrType as T;
use Mutability as M;
use Returned as R;

const S: AttrType = T::String;

/// `value`/`display`/`type`/`primary`, the usual shape of a multi-valued attribute (RFC 7643 §2.4).
macro_rules! multi_subs {
    ($value_ty:expr, $value_desc:expr, $types:expr) => {
        &[
            AttributeDef::new("value", $value_ty, $value_desc),
            AttributeDef::new("display", S, "A human-readable name, primarily used for display purposes."),
            AttributeDef::new("type", S, "A label indicating the attribute's function.").canonical($types),
            AttributeDef::new("primary", T::Boolean, "A Boolean value indicating the 'primary' or preferred attribute value for this attribute."),
        ]
    };
}

/// `id`, `externalId` and `meta` (RFC 7643 §3.1). They belong to every resource but to no schema,
/// so `/Schemas` does not list them; `resolve` still finds them.
pub const COMMON_ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef::new("id", S, "Unique identifier for the SCIM resource as defined by the service provider.")
        .case_exact()
        .mutability(M::ReadOnly)
        .returned(R::Always)
        .unique(Uniqueness::Server),
    AttributeDef::new("externalId", S, "A String that is an identifier for the resource as defined by the provisioning client.")
        .case_exact(),
    AttributeDef::new("meta", T::Complex, "A complex attribute containing resource metadata.")
        .mutability(M::ReadOnly)
        .subs(&[
            AttributeDef::new("resourceType", S, "The name of the resource type of the resource.")
                .case_exact()
                .mutability(M::ReadOnly),
            AttributeDef::new("created", T::DateTime, "The DateTime that the resource was added to the service provider.")
                .mutability(M::ReadOnly),
            AttributeDef::new("lastModified", T::DateTime, "The most recent DateTime that the details of this resource were updated at the service provider.")
                .mutability(M::ReadOnly),
            AttributeDef::new("location", T::Reference, "The URI of the resource being returned.")
                .case_exact()
                .mutability(M::ReadOnly)
                .refs(&["uri"]),
            AttributeDef::new("version", S, "The version of the resource being returned.")
                .case_exact()
                .mutability(M::ReadOnly),
        ]),
];

pub const USER_ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef::new("userName", S, "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.")
        .required()
        .unique(Uniqueness::Server),
    // BitaBIZ needs a name (given and family) and an email for every account, and says so here,
    // so that clients that read /Schemas to learn what to send do not create refused users.
    AttributeDef::new("name", T::Complex, "The components of the user's real name.").required().subs(&[
        AttributeDef::new("formatted", S, "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display."),
        AttributeDef::new("familyName", S, "The family name of the User, or last name in most Western languages.").required(),
        AttributeDef::new("givenName", S, "The given name of the User, or first name in most Western languages.").required(),
        AttributeDef::new("middleName", S, "The middle name(s) of the User."),
        AttributeDef::new("honorificPrefix", S, "The honorific prefix(es) of the User, or title in most Western languages."),
        AttributeDef::new("honorificSuffix", S, "The honorific suffix(es) of the User, or suffix in most Western languages."),
    ]),
    AttributeDef::new("displayName", S, "The name of the User, suitable for display to end-users."),
    AttributeDef::new("nickName", S, "The casual way to address the user in real life."),
    AttributeDef::new("profileUrl", T::Reference, "A fully qualified URL pointing to a page representing the User's online profile.")
        .refs(&["external"]),
    AttributeDef::new("title", S, "The user's title, such as \"Vice President\"."),
    AttributeDef::new("userType", S, "Used to identify the relationship between the organization and the user."),
    AttributeDef::new("preferredLanguage", S, "Indicates the User's preferred written or spoken language."),
    AttributeDef::new("locale", S, "Used to indicate the User's default location for purposes of localizing items such as currency, date time format, or numerical representations."),
    AttributeDef::new("timezone", S, "The User's time zone in the 'Olson' time zone database format, e.g., 'America/Los_Angeles'."),
    AttributeDef::new("active", T::Boolean, "A Boolean value indicating the User's administrative status."),
    AttributeDef::new("password", S, "The User's cleartext password.")
        .mutability(M::WriteOnly)
        .returned(R::Never),
    AttributeDef::new("emails", T::Complex, "Email addresses for the user.")
        .multi()
        .required()
        .subs(&[
            AttributeDef::new("value", S, "Email addresses for the user.").required(),
            AttributeDef::new("display", S, "A human-readable name, primarily used for display purposes."),
            AttributeDef::new("type", S, "A label indicating the attribute's function.").canonical(&["work", "home", "other"]),
            AttributeDef::new("primary", T::Boolean, "A Boolean value indicating the 'primary' or preferred attribute value for this attribute."),
        ]),
    AttributeDef::new("phoneNumbers", T::Complex, "Phone numbers for the User.")
        .multi()
        .subs(multi_subs!(S, "Phone number of the User.", &["work", "home", "mobile", "fax", "pager", "other"])),
    AttributeDef::new("ims", T::Complex, "Instant messaging addresses for the User.")
        .multi()
        .subs(multi_subs!(S, "Instant messaging address for the User.", &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"])),
    AttributeDef::new("photos", T::Complex, "URLs of photos of the User.")
        .multi()
        .subs(&[
            AttributeDef::new("value", T::Reference, "URL of a photo of the User.").refs(&["external"]),
            AttributeDef::new("display", S, "A human-readable name, primarily used for display purposes."),
            AttributeDef::new("type", S, "A label indicating the attribute's function.").canonical(&["photo", "thumbnail"]),
            AttributeDef::new("primary", T::Boolean, "A Boolean value indicating the 'primary' or preferred attribute value for this attribute."),
        ]),
    AttributeDef::new("addresses", T::Complex, "A physical mailing address for this User.")
        .multi()
        .subs(&[
            AttributeDef::new("formatted", S, "The full mailing address, formatted for display or use with a mailing label."),
            AttributeDef::new("streetAddress", S, "The full street address component."),
            AttributeDef::new("locality", S, "The city or locality component."),
            AttributeDef::new("region", S, "The state or region component."),
            AttributeDef::new("postalCode", S, "The zip code or postal code component."),
            AttributeDef::new("country", S, "The country name component."),
            AttributeDef::new("type", S, "A label indicating the attribute's function.").canonical(&["work", "home", "other"]),
            AttributeDef::new("primary", T::Boolean, "A Boolean value indicating the 'primary' or preferred attribute value for this attribute."),
        ]),
    AttributeDef::new("groups", T::Complex, "A list of groups to which the user belongs.")
        .multi()
        .mutability(M::ReadOnly)
        .subs(&[
            AttributeDef::new("value", S, "The identifier of the User's group.").mutability(M::ReadOnly),
            AttributeDef::new("$ref", T::Reference, "The URI of the corresponding 'Group' resource to which the user belongs.")
                .case_exact()
                .mutability(M::ReadOnly)
                .refs(&["User", "Group"]),
            AttributeDef::new("display", S, "A human-readable name, primarily used for display purposes.").mutability(M::ReadOnly),
            AttributeDef::new("type", S, "A label indicating the attribute's function.")
                .mutability(M::ReadOnly)
                .canonical(&["direct", "indirect"]),
        ]),
    AttributeDef::new("entitlements", T::Complex, "A list of entitlements for the User that represent a thing the User has.")
        .multi()
        .subs(multi_subs!(S, "The value of an entitlement.", &[])),
    AttributeDef::new("roles", T::Complex, "A list of roles for the User that collectively represent who the User is.")
        .multi()
        .subs(multi_subs!(S, "The value of a role.", &[])),
    AttributeDef::new("x509Certificates", T::Complex, "A list of certificates issued to the User.")
        .multi()
        .subs(multi_subs!(T::Binary, "The value of an X.509 certificate.", &[])),
];

pub const ENTERPRISE_USER_ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef::new(
        "employeeNumber",
        S,
        "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization.",
    ),
    AttributeDef::new("costCenter", S, "Identifies the name of a cost center."),
    AttributeDef::new("organization", S, "Identifies the name of an organization."),
    AttributeDef::new("division", S, "Identifies the name of a division."),
    AttributeDef::new("department", S, "Identifies the name of a department."),
    AttributeDef::new("manager", T::Complex, "The User's manager.").subs(&[
        AttributeDef::new(
            "value",
            S,
            "The id of the SCIM resource representing the User's manager.",
        ),
        AttributeDef::new(
            "$ref",
            T::Reference,
            "The URI of the SCIM resource representing the User's manager.",
        )
        .case_exact()
        .refs(&["User"]),
        AttributeDef::new("displayName", S, "The displayName of the User's manager.")
            .mutability(M::ReadOnly),
    ]),
];

pub const GROUP_ATTRIBUTES: &[AttributeDef] = &[
    // RFC 7643 §4.2 calls displayName REQUIRED; this server also keeps it unique per tenant.
    AttributeDef::new("displayName", S, "A human-readable name for the Group.")
        .required()
        .unique(Uniqueness::Server),
    AttributeDef::new("members", T::Complex, "A list of members of the Group.")
        .multi()
        .subs(&[
            AttributeDef::new("value", S, "Identifier of the member of this Group.")
                .case_exact()
                .mutability(M::Immutable),
            AttributeDef::new(
                "$ref",
                T::Reference,
                "The URI corresponding to a SCIM resource that is a member of this Group.",
            )
            .case_exact()
            .mutability(M::Immutable)
            .refs(&["User", "Group"]),
            AttributeDef::new(
                "display",
                S,
                "A human-readable name, primarily used for display purposes.",
            )
            .mutability(M::Immutable),
            AttributeDef::new(
                "type",
                S,
                "A label indicating the type of resource, e.g., 'User' or 'Group'.",
            )
            .mutability(M::Immutable)
            .canonical(&["User", "Group"]),
        ]),
];

pub const USER_SCHEMA_DEF: SchemaDef = SchemaDef {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: USER_ATTRIBUTES,
};

pub const ENTERPRISE_USER_SCHEMA_DEF: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: ENTERPRISE_USER_ATTRIBUTES,
};

pub const GROUP_SCHEMA_DEF: SchemaDef = SchemaDef {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: GROUP_ATTRIBUTES,
};

/// Every schema served at `/Schemas`, in a stable order.
pub const ALL_SCHEMAS: &[&SchemaDef] = &[
    &USER_SCHEMA_DEF,
    &ENTERPRISE_USER_SCHEMA_DEF,
    &GROUP_SCHEMA_DEF,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    pub fn core_schema(self) -> &'static SchemaDef {
        match self {
            ResourceKind::User => &USER_SCHEMA_DEF,
            ResourceKind::Group => &GROUP_SCHEMA_DEF,
        }
    }

    pub fn extensions(self) -> &'static [&'static SchemaDef] {
        match self {
            ResourceKind::User => &[&ENTERPRISE_USER_SCHEMA_DEF],
            ResourceKind::Group => &[],
        }
    }

    /// The resource type name (`meta.resourceType`, `/ResourceTypes` id).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The collection's path under the SCIM base URL (`/ResourceTypes` endpoint).
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "/Users",
            ResourceKind::Group => "/Groups",
        }
    }

    /// The core schema or a known extension with this id, ignoring case.
    pub fn schema(self, urn: &str) -> Option<&'static SchemaDef> {
        let core = self.core_schema();
        if core.id.eq_ignore_ascii_case(urn) {
            return Some(core);
        }
        self.extensions()
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    pub fn is_core_urn(self, urn: &str) -> bool {
        self.core_schema().id.eq_ignore_ascii_case(urn)
    }

    /// A known extension (not the core schema) with this id, ignoring case.
    pub fn known_extension(self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions()
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }
}

/// Finds the definition of `attr` (or of its sub-attribute `sub`) for a resource kind.
///
/// `urn: None` and the core schema URN both mean the core schema plus the common attributes; a
/// known extension URN means that extension; any other URN (for example an Entra custom extension)
/// gives `None`, as do unknown names. Everything is compared case-insensitively.
pub fn resolve(
    kind: ResourceKind,
    urn: Option<&str>,
    attr: &str,
    sub: Option<&str>,
) -> Option<&'static AttributeDef> {
    let def = match urn {
        None => find_core(kind, attr)?,
        Some(u) if kind.is_core_urn(u) => find_core(kind, attr)?,
        Some(u) => kind.known_extension(u)?.attribute(attr)?,
    };
    match sub {
        None => Some(def),
        Some(s) => def.sub(s),
    }
}

fn find_core(kind: ResourceKind, attr: &str) -> Option<&'static AttributeDef> {
    COMMON_ATTRIBUTES
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(attr))
        .or_else(|| kind.core_schema().attribute(attr))
}

/// The RFC 7643 §7 representation of a schema, as served by `/Schemas`. The caller adds
/// `meta.location`, which depends on the base URL.
pub fn schema_json(schema: &SchemaDef) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": schema.attributes.iter().map(attribute_json).collect::<Vec<_>>(),
        "meta": { "resourceType": "Schema" },
    })
}

fn attribute_json(def: &AttributeDef) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), def.name.into());
    out.insert("type".into(), def.ty.as_str().into());
    out.insert("multiValued".into(), def.multi_valued.into());
    out.insert("description".into(), def.description.into());
    out.insert("required".into(), def.required.into());
    out.insert("caseExact".into(), def.case_exact.into());
    if !def.canonical_values.is_empty() {
        out.insert("canonicalValues".into(), def.canonical_values.into());
    }
    if def.ty == AttrType::Reference {
        out.insert("referenceTypes".into(), def.reference_types.into());
    }
    out.insert("mutability".into(), def.mutability.as_str().into());
    out.insert("returned".into(), def.returned.as_str().into());
    out.insert("uniqueness".into(), def.uniqueness.as_str().into());
    if def.ty == AttrType::Complex {
        let subs: Vec<Value> = def.sub_attributes.iter().map(attribute_json).collect();
        out.insert("subAttributes".into(), subs.into());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(attr: &str, sub: Option<&str>) -> &'static AttributeDef {
        resolve(ResourceKind::User, None, attr, sub).expect("attribute should resolve")
    }

    #[test]
    fn user_name_is_case_insensitive_and_server_unique() {
        let d = user("userName", None);
        assert!(!d.case_exact);
        assert!(d.required);
        assert_eq!(d.uniqueness, Uniqueness::Server);
    }

    #[test]
    fn id_and_external_id_are_case_exact() {
        assert!(user("id", None).case_exact);
        assert_eq!(user("id", None).returned, Returned::Always);
        assert_eq!(user("id", None).mutability, Mutability::ReadOnly);
        assert!(user("externalId", None).case_exact);
        assert_eq!(user("externalId", None).mutability, Mutability::ReadWrite);
    }

    #[test]
    fn email_value_is_case_insensitive() {
        assert!(!user("emails", Some("value")).case_exact);
        assert!(user("emails", None).multi_valued);
    }

    #[test]
    fn resolve_ignores_case_everywhere() {
        let d = resolve(
            ResourceKind::User,
            Some("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"),
            "NAME",
            Some("GIVENNAME"),
        );
        assert_eq!(d.map(|d| d.name), Some("givenName"));
        let d = resolve(
            ResourceKind::User,
            Some("urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:user"),
            "Manager",
            Some("VALUE"),
        );
        assert_eq!(d.map(|d| d.name), Some("value"));
    }

    #[test]
    fn resolve_keeps_extension_attributes_out_of_the_core_namespace() {
        assert!(resolve(ResourceKind::User, None, "department", None).is_none());
        assert!(
            resolve(
                ResourceKind::User,
                Some(ENTERPRISE_USER_SCHEMA),
                "department",
                None
            )
            .is_some()
        );
        assert!(
            resolve(
                ResourceKind::User,
                Some(ENTERPRISE_USER_SCHEMA),
                "userName",
                None
            )
            .is_none()
        );
    }

    #[test]
    fn resolve_rejects_unknown_names_and_custom_urns() {
        assert!(resolve(ResourceKind::User, None, "nonsense", None).is_none());
        assert!(resolve(ResourceKind::User, None, "name", Some("nope")).is_none());
        assert!(resolve(ResourceKind::User, None, "title", Some("value")).is_none());
        assert!(
            resolve(
                ResourceKind::User,
                Some("urn:ietf:params:scim:schemas:extension:Custom:2.0:User"),
                "x",
                None
            )
            .is_none()
        );
        assert!(resolve(ResourceKind::Group, Some(USER_SCHEMA), "userName", None).is_none());
    }

    #[test]
    fn group_attributes_resolve_only_for_groups() {
        assert!(resolve(ResourceKind::Group, None, "members", Some("value")).is_some());
        assert!(resolve(ResourceKind::User, None, "members", None).is_none());
        assert!(resolve(ResourceKind::Group, None, "userName", None).is_none());
        assert!(resolve(ResourceKind::Group, None, "id", None).is_some());
        assert!(resolve(ResourceKind::Group, None, "meta", Some("lastModified")).is_some());
    }

    #[test]
    fn password_is_never_returned_and_groups_read_only() {
        assert_eq!(user("password", None).returned, Returned::Never);
        assert_eq!(user("password", None).mutability, Mutability::WriteOnly);
        assert_eq!(user("groups", None).mutability, Mutability::ReadOnly);
    }

    #[test]
    fn every_rfc_user_attribute_exists() {
        for name in [
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates",
        ] {
            assert!(USER_SCHEMA_DEF.attribute(name).is_some(), "{name}");
        }
        for name in [
            "employeeNumber",
            "costCenter",
            "organization",
            "division",
            "department",
            "manager",
        ] {
            assert!(
                ENTERPRISE_USER_SCHEMA_DEF.attribute(name).is_some(),
                "{name}"
            );
        }
        assert_eq!(user("x509Certificates", Some("value")).ty, AttrType::Binary);
        assert_eq!(user("meta", Some("created")).ty, AttrType::DateTime);
        assert_eq!(user("active", None).ty, AttrType::Boolean);
    }

    #[test]
    fn schema_json_has_rfc_shape_and_no_nulls() {
        let v = schema_json(&USER_SCHEMA_DEF);
        assert_eq!(v["id"], USER_SCHEMA);
        assert_eq!(v["meta"]["resourceType"], "Schema");
        let attrs = v["attributes"].as_array().expect("attributes array");
        assert_eq!(attrs.len(), USER_ATTRIBUTES.len());
        let user_name = &attrs[0];
        assert_eq!(user_name["name"], "userName");
        assert_eq!(user_name["type"], "string");
        assert_eq!(user_name["multiValued"], false);
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["caseExact"], false);
        assert_eq!(user_name["mutability"], "readWrite");
        assert_eq!(user_name["returned"], "default");
        assert_eq!(user_name["uniqueness"], "server");
        assert!(user_name.get("subAttributes").is_none());
        let emails = attrs
            .iter()
            .find(|a| a["name"] == "emails")
            .expect("emails");
        assert_eq!(emails["multiValued"], true);
        assert_eq!(
            emails["subAttributes"][2]["canonicalValues"],
            json!(["work", "home", "other"])
        );
        fn no_nulls(v: &Value) -> bool {
            match v {
                Value::Null => false,
                Value::Array(a) => a.iter().all(no_nulls),
                Value::Object(o) => o.values().all(no_nulls),
                _ => true,
            }
        }
        for s in ALL_SCHEMAS {
            assert!(no_nulls(&schema_json(s)));
        }
    }

    #[test]
    fn schema_json_lists_reference_types() {
        let v = schema_json(&ENTERPRISE_USER_SCHEMA_DEF);
        let manager = v["attributes"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == "manager"))
            .cloned();
        let manager = manager.expect("manager");
        assert_eq!(manager["type"], "complex");
        assert_eq!(manager["subAttributes"][1]["name"], "$ref");
        assert_eq!(
            manager["subAttributes"][1]["referenceTypes"],
            json!(["User"])
        );
        assert_eq!(manager["subAttributes"][2]["mutability"], "readOnly");
    }

    #[test]
    fn resource_kind_schemas() {
        assert_eq!(ResourceKind::User.core_schema().id, USER_SCHEMA);
        assert_eq!(ResourceKind::User.extensions().len(), 1);
        assert!(ResourceKind::Group.extensions().is_empty());
        assert!(
            ResourceKind::User
                .schema("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user")
                .is_some()
        );
        assert!(
            ResourceKind::Group
                .known_extension(ENTERPRISE_USER_SCHEMA)
                .is_none()
        );
        assert_eq!(ResourceKind::Group.name(), "Group");
    }
}
