import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildSchema, parse } from 'graphql';
import { executedFields, selectsConditionally } from '../lib/policy/field-set.ts';
import { PolicyFileError, loadPolicies } from '../lib/policy/load.ts';
import { schemaShape } from '../lib/schemas.ts';
import { soh } from './support/federation.ts';

// Policy files (DESIGN §6) are the rules of doelbinding: a broken file must stop start-up with a
// message that names the file, the path inside it and the problem, so that whoever edits the rules
// can fix them. `soh policy check` validates them; `soh policy explain` prints them for a DPIA.

const REAL_POLICIES = fileURLToPath(new URL('../policies/', import.meta.url));
const SCHEMAS = { gateway: schemaShape('gateway'), node: schemaShape('node') };

const copies: string[] = [];
afterAll(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

/** A fresh copy of the real policies/ in a temporary directory. */
function copyOfPolicies(): string {
  const dir = mkdtempSync(join(tmpdir(), 'soh-policies-'));
  copies.push(dir);
  cpSync(REAL_POLICIES, dir, { recursive: true });
  return dir;
}

/** Replaces text that must be present in the file (so a changed policy file fails here, loudly). */
function edit(dir: string, file: string, from: string | RegExp, to: string): void {
  const path = join(dir, file);
  const text = readFileSync(path, 'utf8');
  const changed = text.replace(from, to);
  if (changed === text) throw new Error(`${file} does not contain ${String(from)}`);
  writeFileSync(path, changed);
}

function append(dir: string, file: string, text: string): void {
  writeFileSync(join(dir, file), readFileSync(join(dir, file), 'utf8') + text);
}

/** The line number (1-based) of the first line of `file` in `dir` containing `text`. */
function lineOf(dir: string, file: string, text: string, occurrence = 1): number {
  const lines = readFileSync(join(dir, file), 'utf8').split('\n');
  let seen = 0;
  for (const [index, line] of lines.entries()) if (line.includes(text) && ++seen === occurrence) return index + 1;
  throw new Error(`${file} has no line ${occurrence} containing ${text}`);
}

function loadError(dir: string): PolicyFileError {
  try {
    loadPolicies(dir, SCHEMAS);
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyFileError);
    return error as PolicyFileError;
  }
  throw new Error('the broken policies loaded without error');
}

interface Break {
  /** The file the error must name, relative to the policy directory. */
  file: string;
  /** The path inside the file (dot-separated), or a pattern for it. */
  path: string | RegExp;
  problem: RegExp;
  apply(dir: string): void;
}

const BREAKS: [string, Break][] = [
  // A node without its release file would refuse every call; one for a node nobody runs is a typo.
  [
    'a node without its release file',
    { file: 'release/veilig-thuis.yaml', path: '', problem: /every node needs a release file/, apply: (d) => rmSync(join(d, 'release/veilig-thuis.yaml')) },
  ],
  [
    'a release file for an unknown node',
    { file: 'release/om.yaml', path: 'node', problem: /unknown node "kmar"/, apply: (d) => edit(d, 'release/om.yaml', /^node: om$/m, 'node: kmar') },
  ],
  // Unknown keys: a misspelt rule must never be silently ignored.
  [
    'an unknown top-level key in a purpose file',
    { file: 'purposes/vt-hit-check.yaml', path: '', problem: /retention/, apply: (d) => append(d, 'purposes/vt-hit-check.yaml', 'retention: 30d\n') },
  ],
  [
    'an unknown key inside an allow entry',
    {
      file: 'purposes/vt-hit-check.yaml',
      path: 'allow.0',
      problem: /regions/,
      apply: (d) => edit(d, 'purposes/vt-hit-check.yaml', '    roles: ["vt-medewerker"]\n', '    roles: ["vt-medewerker"]\n    regions: [haaglanden]\n'),
    },
  ],
  [
    'a misspelt requireCaseRef (the real key then missing)',
    {
      file: 'purposes/vt-hit-check.yaml',
      // Either problem may be reported first: the real key missing, or the misspelt one unknown.
      path: /^(requireCaseRef|)$/,
      problem: /expected boolean, received undefined|requireCaseref/,
      apply: (d) => edit(d, 'purposes/vt-hit-check.yaml', 'requireCaseRef:', 'requireCaseref:'),
    },
  ],
  [
    'an unknown top-level key in a release file',
    { file: 'release/politie.yaml', path: '', problem: /owner/, apply: (d) => append(d, 'release/politie.yaml', 'owner: politie\n') },
  ],
  // Unknown fields and types, checked against the schema each file speaks about.
  [
    'a field that is not in the public schema',
    {
      file: 'purposes/vt-hit-check.yaml',
      path: 'fields.PartnerHit.2',
      problem: /unknown field "colour" on type PartnerHit/,
      apply: (d) => edit(d, 'purposes/vt-hit-check.yaml', 'PartnerHit: "*"', 'PartnerHit: [partner, status, colour]'),
    },
  ],
  [
    'a type that is not in the public schema',
    { file: 'purposes/police-ban-enforcement.yaml', path: 'fields.Person', problem: /unknown object type "Person"/, apply: (d) => append(d, 'purposes/police-ban-enforcement.yaml', '  Person: "*"\n') },
  ],
  [
    'a node-API type in a purpose file (purposes speak about the public schema)',
    { file: 'purposes/police-ban-enforcement.yaml', path: 'fields.NodeBan', problem: /unknown object type "NodeBan"/, apply: (d) => append(d, 'purposes/police-ban-enforcement.yaml', '  NodeBan: "*"\n') },
  ],
  [
    'a field that is not in the node schema, in a release file',
    {
      file: 'release/politie.yaml',
      path: 'release.police-ban-enforcement.BanArea.2',
      problem: /unknown field "centre" on type BanArea/,
      apply: (d) => edit(d, 'release/politie.yaml', /(police-ban-enforcement:[\s\S]*?BanArea: \[description, municipality)\]/, '$1, centre]'),
    },
  ],
  [
    'a public-schema type in a release file (releases speak about the node schema)',
    {
      file: 'release/om.yaml',
      path: 'release.vt-hit-check.HitCheck',
      problem: /unknown object type "HitCheck"/,
      apply: (d) => edit(d, 'release/om.yaml', '    NodeRecord: [contact]\n', '    NodeRecord: [contact]\n    HitCheck: "*"\n'),
    },
  ],
  [
    'a release for a purpose that does not exist',
    { file: 'release/om.yaml', path: 'release.marketing-analysis', problem: /unknown purpose "marketing-analysis"/, apply: (d) => append(d, 'release/om.yaml', '  marketing-analysis:\n    Query: [records]\n') },
  ],
  // Organisation patterns: an id, an id ending in "-*", or "*".
  ...(
    [
      ['an upper-case organisation', 'Politie'],
      ['a wildcard without its dash', 'politie*'],
      ['a wildcard in front', '*-politie'],
      ['a wildcard in the middle', 'veilig-*-thuis'],
      ['an organisation with a space', 'politie rotterdam'],
      ['an empty organisation', ''],
    ] as const
  ).map(
    ([what, pattern]): [string, Break] => [
      `a bad organisation pattern: ${what}`,
      {
        file: 'purposes/police-ban-enforcement.yaml',
        path: 'allow.0.orgs.0',
        problem: /organisation id/,
        apply: (d) => edit(d, 'purposes/police-ban-enforcement.yaml', '- orgs: ["politie"]', `- orgs: ["${pattern}"]`),
      },
    ],
  ),
  // Duplicates.
  [
    'a duplicate purpose id in a second file',
    {
      file: 'purposes/zz-copy.yaml',
      path: 'id',
      problem: /duplicate purpose "vt-hit-check" \(also in .*vt-hit-check\.yaml\)/,
      apply: (d) => copyFileSync(join(d, 'purposes/vt-hit-check.yaml'), join(d, 'purposes/zz-copy.yaml')),
    },
  ],
  [
    'a second release file for the same node',
    {
      file: 'release/zz-om-copy.yaml',
      path: 'node',
      problem: /duplicate release file for node "om"/,
      apply: (d) => copyFileSync(join(d, 'release/om.yaml'), join(d, 'release/zz-om-copy.yaml')),
    },
  ],
  // Missing required keys.
  ...(
    [
      ['legalBasis', 'purposes/police-ban-enforcement.yaml', /^legalBasis: .*\n/m],
      ['processingActivity', 'purposes/privacy-audit.yaml', /^processingActivity: .*\n/m],
      ['requireCaseRef', 'purposes/vt-hit-check.yaml', /^requireCaseRef: .*\n/m],
      ['id', 'purposes/reclassering-supervision.yaml', /^id: .*\n/m],
      ['node', 'release/veilig-thuis.yaml', /^node: .*\n/m],
    ] as const
  ).map(
    ([key, file, line]): [string, Break] => [
      `a missing required key: ${key}`,
      { file, path: key, problem: /expected \w+, received undefined|required|missing/i, apply: (d) => edit(d, file, line, '') },
    ],
  ),
  // Values of the wrong shape.
  [
    'an empty allow list',
    { file: 'purposes/privacy-audit.yaml', path: 'allow', problem: /./, apply: (d) => edit(d, 'purposes/privacy-audit.yaml', /^allow:\n(\s+.*\n)+?(?=requireCaseRef)/m, 'allow: []\n') },
  ],
  [
    'requireCaseRef as a string',
    { file: 'purposes/vt-hit-check.yaml', path: 'requireCaseRef', problem: /boolean/, apply: (d) => edit(d, 'purposes/vt-hit-check.yaml', 'requireCaseRef: true', 'requireCaseRef: "yes"') },
  ],
  [
    'a processing activity that is not a versioned URI',
    {
      file: 'purposes/vt-hit-check.yaml',
      path: 'processingActivity',
      problem: /urn:soh:activity/,
      apply: (d) => edit(d, 'purposes/vt-hit-check.yaml', 'urn:soh:activity:vt-hit-check:1', 'urn:soh:activity:vt-hit-check'),
    },
  ],
];

describe('policy files (DESIGN §6)', () => {
  it('the real policies load: the four purposes of the contract and a release file per node', () => {
    const policies = loadPolicies(REAL_POLICIES, SCHEMAS);
    expect([...policies.purposes.keys()].sort()).toEqual(['police-ban-enforcement', 'privacy-audit', 'reclassering-supervision', 'vt-hit-check']);
    expect([...policies.releases.keys()].sort()).toEqual(['om', 'politie', 'reclassering', 'veilig-thuis']);
    expect(policies.revision).toMatch(/^[0-9a-f]{64}$/);
  });

  it('an unchanged copy loads with the same revision (so every break below is the only change)', () => {
    expect(loadPolicies(copyOfPolicies(), SCHEMAS).revision).toBe(loadPolicies(REAL_POLICIES, SCHEMAS).revision);
  });

  describe('a broken file stops loading with file, path and problem', () => {
    it.each(BREAKS)('%s', (_what, broken) => {
      const dir = copyOfPolicies();
      broken.apply(dir);
      const error = loadError(dir);
      expect(resolve(error.file)).toBe(join(dir, broken.file));
      if (typeof broken.path === 'string') expect(error.path).toBe(broken.path);
      else expect(error.path).toMatch(broken.path);
      expect(error.problem).toMatch(broken.problem);
      // The message a person reads carries all three.
      expect(error.message).toBe(`${error.file}: ${error.path || '(document)'}: ${error.problem}`);
    });
  });

  describe('invalid YAML names the file and the line', () => {
    it('an unclosed flow sequence', () => {
      const dir = copyOfPolicies();
      edit(dir, 'purposes/vt-hit-check.yaml', 'Query: [hitCheck]', 'Query: [hitCheck');
      const error = loadError(dir);
      expect(resolve(error.file)).toBe(join(dir, 'purposes/vt-hit-check.yaml'));
      expect(error.path).toMatch(/^line \d+$/);
      expect(error.problem.length).toBeGreaterThan(0);
    });

    it('a key given twice (which YAML would otherwise resolve silently to the last value)', () => {
      const dir = copyOfPolicies();
      append(dir, 'purposes/vt-hit-check.yaml', 'requireCaseRef: false\n');
      const error = loadError(dir);
      expect(resolve(error.file)).toBe(join(dir, 'purposes/vt-hit-check.yaml'));
      expect(error.path).toBe(`line ${lineOf(dir, 'purposes/vt-hit-check.yaml', 'requireCaseRef', 2)}`);
      expect(error.problem).toMatch(/unique|duplicate/i);
    });

    it('a tab used for indentation', () => {
      const dir = copyOfPolicies();
      edit(dir, 'release/om.yaml', '  vt-hit-check:\n    Query: [records]', '  vt-hit-check:\n\tQuery: [records]');
      const error = loadError(dir);
      expect(resolve(error.file)).toBe(join(dir, 'release/om.yaml'));
      expect(error.path).toBe(`line ${lineOf(dir, 'release/om.yaml', '\tQuery')}`);
      expect(error.problem.length).toBeGreaterThan(0);
    });
  });

  describe('soh policy check', () => {
    it('exits 0 on the real policies', async () => {
      const result = await soh(['policy', 'check'], { SOH_POLICY_DIR: REAL_POLICIES });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/policies ok: 4 purposes, 4 release files, revision [0-9a-f]{64}/);
    });

    it.each([
      ['an unknown field', BREAKS.find(([what]) => what === 'a field that is not in the public schema')![1], ['vt-hit-check.yaml', 'fields.PartnerHit.2', 'unknown field "colour"']],
      ['a bad organisation pattern', BREAKS.find(([what]) => what.endsWith('an upper-case organisation'))![1], ['police-ban-enforcement.yaml', 'allow.0.orgs.0', 'organisation id']],
      ['a duplicate purpose id', BREAKS.find(([what]) => what === 'a duplicate purpose id in a second file')![1], ['zz-copy.yaml', 'id', 'duplicate purpose "vt-hit-check"']],
    ] as const)('exits non-zero on a copy with %s, naming file, path and problem', async (_what, broken, expected) => {
      const dir = copyOfPolicies();
      broken.apply(dir);
      const result = await soh(['policy', 'check'], { SOH_POLICY_DIR: dir });
      expect(result.code).toBe(1);
      expect(result.stdout).not.toContain('policies ok');
      for (const text of expected) expect(result.stderr).toContain(text);
      expect(result.stderr).toContain(dir.split('/').at(-1));
    });

    it('exits non-zero on invalid YAML, naming the file and line', async () => {
      const dir = copyOfPolicies();
      edit(dir, 'purposes/vt-hit-check.yaml', 'Query: [hitCheck]', 'Query: [hitCheck');
      const result = await soh(['policy', 'check'], { SOH_POLICY_DIR: dir });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/vt-hit-check\.yaml: line \d+: /);
    });
  });

  describe('soh policy explain', () => {
    it('prints who may use police-ban-enforcement, its legal basis and its fields, without the area centre or radius', async () => {
      const purpose = loadPolicies(REAL_POLICIES, SCHEMAS).purposes.get('police-ban-enforcement')!;
      const result = await soh(['policy', 'explain', '--purpose', 'police-ban-enforcement'], { SOH_POLICY_DIR: REAL_POLICIES });
      expect(result.code).toBe(0);
      const out = result.stdout;
      expect(out).toContain('purpose police-ban-enforcement');
      // Only the purpose asked for.
      expect(out).not.toMatch(/purpose (vt-hit-check|reclassering-supervision|privacy-audit)\b/);
      // Who: politie × politie-medewerker (DESIGN §6).
      expect(out).toMatch(/who may use it: orgs \[politie\] with role \[politie-medewerker\]/);
      expect(out).toContain(`legal basis: ${purpose.legalBasis}`);
      expect(out).toContain('processing activity: urn:soh:activity:police-ban-enforcement:1');
      expect(out).toContain('case_ref: required');
      // Fields visible at the gateway.
      expect(out).toMatch(/Query: activeBans, contactBanned, hitCheck/);
      expect(out).toMatch(/BanArea: description, municipality\n/);
      expect(out).toMatch(/PartnerHit: partner, status\n/);
      expect(out).toMatch(/Ban: .*\bviolatedAt\b/);
      // Never the area's centre or radius, at the gateway or released by any node.
      expect(out).not.toMatch(/\bcenter\b/);
      expect(out).not.toContain('radiusMeters');
      expect(out).not.toContain('GeoPoint');
      // Per node: Veilig Thuis releases only whether it knows the person.
      expect(out).toMatch(/released by veilig-thuis: whether it knows the person\n/);
      expect(out).toMatch(/released by politie: whether it knows the person; fields:/);
    });

    it('prints the area centre and radius for reclassering-supervision, and that Veilig Thuis releases nothing', async () => {
      const result = await soh(['policy', 'explain', '--purpose', 'reclassering-supervision'], { SOH_POLICY_DIR: REAL_POLICIES });
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/BanArea: .*\bcenter\b.*\bradiusMeters\b/);
      expect(result.stdout).toMatch(/GeoPoint: lat, lon/);
      expect(result.stdout).toContain('released by veilig-thuis: nothing');
    });

    it('refuses an unknown purpose', async () => {
      const result = await soh(['policy', 'explain', '--purpose', 'marketing-analysis'], { SOH_POLICY_DIR: REAL_POLICIES });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('unknown purpose "marketing-analysis"');
    });
  });
});

describe('the fields a request runs', () => {
  const schema = buildSchema(readFileSync(fileURLToPath(new URL('../schemas/gateway.graphql', import.meta.url)), 'utf8'));
  const DOCUMENT = parse(`
    query Run($terms: Boolean = false) { activeBans(subject: { bsn: "123456782" }) { ...Terms bans { ... on Ban { kind area @skip(if: true) { description } } } } }
    query Other { hitCheck(subject: { bsn: "123456782" }) { anyHit } }
    fragment Terms on BanCheck { complete bans { id conditions @include(if: $terms) } }`);

  it('follows the operation that runs through fragments, with @skip and @include applied to its variables and their defaults', () => {
    expect(selectsConditionally(DOCUMENT)).toBe(true);
    expect(executedFields(schema, DOCUMENT, 'Run', {})).toEqual(['Query.activeBans', 'BanCheck.complete', 'BanCheck.bans', 'Ban.id', 'Ban.kind']);
    expect(executedFields(schema, DOCUMENT, 'Run', { terms: true })).toContain('Ban.conditions');
    expect(executedFields(schema, DOCUMENT, 'Other', {})).toEqual(['Query.hitCheck', 'HitCheck.anyHit']);
    // Variables that do not coerce: no answer here, and execution refuses the request.
    expect(executedFields(schema, DOCUMENT, 'Run', { terms: 'yes' })).toBeNull();
  });

  it('finds nothing conditional in one operation without @skip or @include', () => {
    expect(selectsConditionally(parse('query One { hitCheck(subject: { bsn: "123456782" }) { anyHit } }'))).toBe(false);
  });
});
