/**
 * The building blocks of the config schema. Each key is declared once, with its schema, the
 * name it takes in the typed config, and whether a reload can apply a change to it; parsing,
 * the snake_case to camelCase renaming and the reload diff are all derived from that one
 * declaration, so they cannot drift apart.
 */
import { z } from 'zod';
import { describeValue, unknownNameMessage } from './describe.js';

/** live: a reload (SIGHUP) applies a change; restart: the daemon must be restarted for it. */
export type Reload = 'live' | 'restart';

export interface Setting<Field extends string = string, Schema extends z.ZodType = z.ZodType> {
  /** The key's name in the typed config. */
  readonly field: Field;
  readonly schema: Schema;
  readonly reload: Reload;
}

export function live<const Field extends string, Schema extends z.ZodType>(field: Field, schema: Schema): Setting<Field, Schema> {
  return { field, schema, reload: 'live' };
}

export function restart<const Field extends string, Schema extends z.ZodType>(field: Field, schema: Schema): Setting<Field, Schema> {
  return { field, schema, reload: 'restart' };
}

/** A section's settings, keyed by their snake_case name in the file. */
export type Settings = Record<string, Setting>;

/** What a section becomes in the typed config: each setting under its field name. */
export type SectionValue<T extends Settings> = { [Key in keyof T as T[Key]['field']]: z.output<T[Key]['schema']> };

export interface Section<T extends Settings = Settings> {
  readonly name: string;
  readonly settings: T;
  /** Accepts the section's mapping, or nothing (absent or empty) for all defaults. */
  readonly schema: z.ZodType<SectionValue<T>>;
  /** Why `key` is refused in this section, listing the keys it knows. */
  unknownKey(key: string): string;
}

export interface SectionOptions {
  /** How a key of this section is called in messages (default "key"). */
  keyNoun?: string;
}

export function section<T extends Settings>(name: string, settings: T, options: SectionOptions = {}): Section<T> {
  const keys = Object.keys(settings);
  const shape = Object.fromEntries(keys.map((key) => [key, settings[key]!.schema]));
  const noun = options.keyNoun ?? 'key';
  const mapping = z
    .strictObject(shape, {
      error: (issue) =>
        issue.code === 'invalid_type'
          ? `${describeValue(issue.input)} is not a mapping; write the section as "${name}:" followed by indented keys (${keys.join(', ')})`
          : undefined,
    })
    .transform((parsed: Record<string, unknown>) => {
      const renamed: Record<string, unknown> = {};
      for (const key of keys) renamed[settings[key]!.field] = parsed[key];
      return renamed as SectionValue<T>;
    });
  return {
    name,
    settings,
    // A section whose keys are all commented out reads as null: treat it as absent.
    schema: z.preprocess((value) => (value === null ? undefined : value), mapping.prefault({})) as unknown as z.ZodType<SectionValue<T>>,
    unknownKey: (key) => unknownNameMessage(noun, key, keys),
  };
}

/** The whole file: its sections, keyed by name (which is also their name in the typed config). */
export type Sections = Record<string, Section>;

export type FileValue<S extends Sections> = { [Name in keyof S]: z.output<S[Name]['schema']> };

/** Reports a problem that involves several keys, at the dotted file path `path`. */
export type CrossCheck<S extends Sections> = (config: FileValue<S>, report: (path: (string | number)[], message: string) => void) => void;

export interface ConfigFileSchema<S extends Sections = Sections> {
  readonly sections: S;
  readonly schema: z.ZodType<FileValue<S>>;
  /** Why `key` is refused at `path` (the path of the mapping that holds it). */
  unknownKey(path: readonly PropertyKey[], key: string): string;
}

export function configFile<S extends Sections>(sections: S, crossCheck: CrossCheck<S>): ConfigFileSchema<S> {
  const names = Object.keys(sections);
  const shape = Object.fromEntries(names.map((name) => [name, sections[name]!.schema]));
  const schema = z
    .strictObject(shape, {
      error: (issue) =>
        issue.code === 'invalid_type'
          ? `the file holds ${describeValue(issue.input)}, but it must be a mapping of sections (${names.join(', ')})`
          : undefined,
    })
    .check((ctx) => {
      // Cross-key checks need every key valid; the keys' own problems are reported first.
      if (ctx.issues.length > 0) return;
      crossCheck(ctx.value as FileValue<S>, (path, message) => {
        ctx.issues.push({ code: 'custom', message, path, input: ctx.value });
      });
    });
  return {
    sections,
    schema: schema as unknown as z.ZodType<FileValue<S>>,
    unknownKey(path, key) {
      if (path.length === 0) return unknownNameMessage('section', key, names);
      const owner = sections[String(path[0])];
      return owner === undefined ? 'unknown key' : owner.unknownKey(key);
    },
  };
}
