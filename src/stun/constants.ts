// Numbers from RFC 8489 (STUN), RFC 5780 (NAT behaviour discovery) and RFC 3489 (classic STUN).

export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_LENGTH = 20;
export const TRANSACTION_ID_LENGTH = 12;
export const FINGERPRINT_XOR = 0x5354554e;

/** The message class, encoded in bits C1 and C0 of the message type. */
export type StunClass = 'request' | 'indication' | 'success' | 'error';

export const METHOD_BINDING = 0x001;

export const CLASS_BITS: Readonly<Record<StunClass, number>> = {
  request: 0x000,
  indication: 0x010,
  success: 0x100,
  error: 0x110,
};

const CLASS_BY_BITS: readonly StunClass[] = ['request', 'indication', 'success', 'error'];

/** Packs method and class into the 14-bit message type (the class bits sit between method bits). */
export function messageType(method: number, cls: StunClass): number {
  return ((method & 0xf80) << 2) | ((method & 0x070) << 1) | (method & 0x00f) | CLASS_BITS[cls];
}

export function classOf(type: number): StunClass {
  return CLASS_BY_BITS[((type >> 7) & 0x2) | ((type >> 4) & 0x1)] as StunClass;
}

export function methodOf(type: number): number {
  return ((type >> 2) & 0xf80) | ((type >> 1) & 0x070) | (type & 0x00f);
}

/** Attribute type codes. Those below 0x8000 are comprehension-required. */
export const Attr = {
  MappedAddress: 0x0001,
  ResponseAddress: 0x0002, // RFC 3489, deprecated
  ChangeRequest: 0x0003, // RFC 5780
  SourceAddress: 0x0004, // RFC 3489, deprecated
  ChangedAddress: 0x0005, // RFC 3489, deprecated
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  Realm: 0x0014,
  Nonce: 0x0015,
  MessageIntegritySha256: 0x001c,
  PasswordAlgorithm: 0x001d,
  Userhash: 0x001e,
  XorMappedAddress: 0x0020,
  Priority: 0x0024, // RFC 8445 (ICE)
  UseCandidate: 0x0025, // RFC 8445 (ICE)
  Padding: 0x0026, // RFC 5780
  ResponsePort: 0x0027, // RFC 5780
  PasswordAlgorithms: 0x8002,
  AlternateDomain: 0x8003,
  Software: 0x8022,
  AlternateServer: 0x8023,
  Fingerprint: 0x8028,
  IceControlled: 0x8029, // RFC 8445 (ICE)
  IceControlling: 0x802a, // RFC 8445 (ICE)
  ResponseOrigin: 0x802b, // RFC 5780
  OtherAddress: 0x802c, // RFC 5780
} as const;

const NAMES = new Map<number, string>([
  [Attr.MappedAddress, 'MAPPED-ADDRESS'],
  [Attr.ResponseAddress, 'RESPONSE-ADDRESS'],
  [Attr.ChangeRequest, 'CHANGE-REQUEST'],
  [Attr.SourceAddress, 'SOURCE-ADDRESS'],
  [Attr.ChangedAddress, 'CHANGED-ADDRESS'],
  [Attr.Username, 'USERNAME'],
  [Attr.MessageIntegrity, 'MESSAGE-INTEGRITY'],
  [Attr.ErrorCode, 'ERROR-CODE'],
  [Attr.UnknownAttributes, 'UNKNOWN-ATTRIBUTES'],
  [Attr.Realm, 'REALM'],
  [Attr.Nonce, 'NONCE'],
  [Attr.MessageIntegritySha256, 'MESSAGE-INTEGRITY-SHA256'],
  [Attr.PasswordAlgorithm, 'PASSWORD-ALGORITHM'],
  [Attr.Userhash, 'USERHASH'],
  [Attr.XorMappedAddress, 'XOR-MAPPED-ADDRESS'],
  [Attr.Priority, 'PRIORITY'],
  [Attr.UseCandidate, 'USE-CANDIDATE'],
  [Attr.Padding, 'PADDING'],
  [Attr.ResponsePort, 'RESPONSE-PORT'],
  [Attr.PasswordAlgorithms, 'PASSWORD-ALGORITHMS'],
  [Attr.AlternateDomain, 'ALTERNATE-DOMAIN'],
  [Attr.Software, 'SOFTWARE'],
  [Attr.AlternateServer, 'ALTERNATE-SERVER'],
  [Attr.Fingerprint, 'FINGERPRINT'],
  [Attr.IceControlled, 'ICE-CONTROLLED'],
  [Attr.IceControlling, 'ICE-CONTROLLING'],
  [Attr.ResponseOrigin, 'RESPONSE-ORIGIN'],
  [Attr.OtherAddress, 'OTHER-ADDRESS'],
]);

export function attributeName(type: number): string {
  return NAMES.get(type) ?? `0x${type.toString(16).padStart(4, '0')}`;
}

/** Whether this implementation understands the attribute (for 420 Unknown Attribute). */
export function isKnownAttribute(type: number): boolean {
  return NAMES.has(type);
}

export function isComprehensionRequired(type: number): boolean {
  return type < 0x8000;
}

/** Password algorithm numbers (RFC 8489 section 18.5). */
export const PasswordAlgorithmId = { MD5: 0x0001, SHA256: 0x0002 } as const;

/** Error codes used by this project, with their RFC reason phrases. */
export const ErrorCodes = {
  TryAlternate: 300,
  BadRequest: 400,
  Unauthorized: 401,
  UnknownAttribute: 420,
  StaleNonce: 438,
  ServerError: 500,
} as const;

export const DEFAULT_PORT = 3478;
