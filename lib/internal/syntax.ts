// The patterns several files check input against, each written once so that two checks
// of the same thing cannot drift apart.

/** An RFC 9110 token (§5.6.2) as pattern source, for building larger patterns. */
export const TOKEN_SOURCE = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";

/** A whole token: a method, a header field name, an auth scheme. */
export const TOKEN = new RegExp(`^${TOKEN_SOURCE}$`);

/** `type/subtype` of a media type (RFC 9110 §8.3.1), parameters left out. */
export const MEDIA_TYPE = new RegExp(`^${TOKEN_SOURCE}/${TOKEN_SOURCE}$`);

/**
 * One media-type parameter, `name=value` with a token or quoted-string value (§5.6.4,
 * §5.6.6). Groups: 1 the name, 2 a token value, 3 a quoted value still escaped.
 */
export const MEDIA_TYPE_PARAMETER = new RegExp(`^(${TOKEN_SOURCE})=(?:(${TOKEN_SOURCE})|"((?:[^"\\\\]|\\\\.)*)")$`);

/** Any character outside visible ASCII (0x21 to 0x7e): no space, no control, no Latin-1. */
export const NOT_VISIBLE_ASCII = /[^\x21-\x7e]/;

/** 1 to `max` characters of visible ASCII, nothing else: an id from a header. */
export function visibleAscii(max: number): RegExp {
  return new RegExp(`^[\\x21-\\x7e]{1,${max}}$`);
}

/**
 * A table or column name safe to write into SQL unquoted: SQLite cannot bind one as a
 * parameter, so only these are ever spliced in.
 */
export const SQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Base64url without padding (RFC 4648 §5), the empty string included. */
export const BASE64URL = /^[A-Za-z0-9_-]*$/;
