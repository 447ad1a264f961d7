/**
 * The network's partners. Adding a partner means one entry here, a node folder under nodes/,
 * a release file under policies/release/ and the enum value in schemas/gateway.graphql.
 */
export const PARTNERS = ['POLITIE', 'VEILIG_THUIS', 'OM', 'RECLASSERING'] as const;
export type Partner = (typeof PARTNERS)[number];

export const NODE_IDS = ['politie', 'veilig-thuis', 'om', 'reclassering'] as const;
export type NodeId = (typeof NODE_IDS)[number];

/** How a node is named in an environment variable: SOH_NODE_URL_VEILIG_THUIS, SOH_NODE_PORT_OM, … */
export function nodeVariableSuffix(id: NodeId): string {
  return id.toUpperCase().replace('-', '_');
}

export interface PartnerInfo {
  partner: Partner;
  nodeId: NodeId;
  /** Field name on the stitched Person. */
  personField: string;
  defaultPort: number;
  holdsBans: boolean;
}

export const PARTNER_INFO: readonly PartnerInfo[] = [
  { partner: 'POLITIE', nodeId: 'politie', personField: 'politie', defaultPort: 4101, holdsBans: true },
  { partner: 'VEILIG_THUIS', nodeId: 'veilig-thuis', personField: 'veiligThuis', defaultPort: 4102, holdsBans: false },
  { partner: 'OM', nodeId: 'om', personField: 'om', defaultPort: 4103, holdsBans: true },
  { partner: 'RECLASSERING', nodeId: 'reclassering', personField: 'reclassering', defaultPort: 4104, holdsBans: true },
];

export function partnerInfo(partner: Partner): PartnerInfo {
  return PARTNER_INFO.find((info) => info.partner === partner)!;
}

export function isNodeId(value: string): value is NodeId {
  return (NODE_IDS as readonly string[]).includes(value);
}

/** DESIGN §4: politie → POLITIE, om → OM, reclassering → RECLASSERING, veilig-thuis-<region> → VEILIG_THUIS. */
export function partnerOfOrg(org: string): Partner | null {
  if (org === 'politie') return 'POLITIE';
  if (org === 'om') return 'OM';
  if (org === 'reclassering') return 'RECLASSERING';
  if (/^veilig-thuis-[a-z0-9-]+$/.test(org)) return 'VEILIG_THUIS';
  return null;
}
