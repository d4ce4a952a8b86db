/**
 * Bodies of llama-server's read-only endpoints, built field for field (and in the same key order) as in the
 * captures get_props.txt, get_v1_models.txt and get_slots.txt.
 */
import type { ModelInstance } from './model-instance.js';
import { CHAT_TEMPLATE, Vocabulary } from './tokenizer.js';

/** What the capture's build reports (`build_info`, `system_fingerprint`). */
export const BUILD_INFO = 'b0-unknown';

const SAMPLERS = ['penalties', 'dry', 'top_n_sigma', 'top_k', 'typ_p', 'top_p', 'min_p', 'xtc', 'temperature'];

/** Sampling parameters in the order `/props` and `/slots` list them, with the server's defaults. */
export function samplingParams(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const params: Record<string, unknown> = {
    seed: 4294967295,
    temperature: 0.800000011920929,
    dynatemp_range: 0.0,
    dynatemp_exponent: 1.0,
    top_k: 40,
    top_p: 0.949999988079071,
    min_p: 0.05000000074505806,
    top_n_sigma: -1.0,
    xtc_probability: 0.0,
    xtc_threshold: 0.10000000149011612,
    typical_p: 1.0,
    repeat_last_n: 64,
    repeat_penalty: 1.0,
    presence_penalty: 0.0,
    frequency_penalty: 0.0,
    dry_multiplier: 0.0,
    dry_base: 1.75,
    dry_allowed_length: 2,
    dry_penalty_last_n: 64,
    mirostat: 0,
    mirostat_tau: 5.0,
    mirostat_eta: 0.10000000149011612,
    adaptive_target: -1.0,
    adaptive_decay: 0.8999999761581421,
    max_tokens: -1,
    n_predict: -1,
    n_keep: 0,
    n_discard: 0,
    ignore_eos: false,
    stream: false,
    n_probs: 0,
    min_keep: 0,
    chat_format: 'Content-only',
    reasoning_format: 'none',
    reasoning_in_content: false,
    generation_prompt: '',
    samplers: SAMPLERS,
    'speculative.types': 'none',
    timings_per_token: false,
    post_sampling_probs: false,
    backend_sampling: false,
    lora: [],
  };
  for (const [k, v] of Object.entries(overrides)) if (k in params && v !== undefined) params[k] = v;
  return params;
}

// The fields `/completion`'s generation_settings has beyond the sampling parameters, and the key they follow.
const COMPLETION_EXTRAS: Record<string, Record<string, unknown>> = {
  dry_penalty_last_n: { dry_sequence_breakers: ['\n', ':', '"', '*'] },
  adaptive_decay: { stop: [] },
  stream: { logit_bias: [] },
  min_keep: { grammar: '', grammar_lazy: false, grammar_triggers: [], preserved_tokens: [] },
};

/** `generation_settings` of a `/completion` answer: the task's sampling parameters plus the extra fields, in order. */
export function completionSettings(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    out[k] = v;
    Object.assign(out, COMPLETION_EXTRAS[k]);
  }
  return out;
}

/** `GET /props` (get_props.txt). */
export function propsBody(inst: ModelInstance): Record<string, unknown> {
  const c = inst.config;
  return {
    default_generation_settings: { params: samplingParams(), n_ctx: c.nCtx },
    total_slots: c.nSlots,
    model_alias: c.alias ?? '',
    model_ftype: c.ftype,
    model_path: c.path,
    modalities: { vision: false, video: false, audio: false },
    media_marker: '<__media_tUVbNMagUVhE9pDDBJbBpJxYKUpENDnh__>',
    endpoint_slots: !c.noSlots,
    endpoint_props: false,
    endpoint_metrics: false,
    ui: true,
    ui_settings: {},
    chat_template: CHAT_TEMPLATE,
    chat_template_caps: {
      supports_object_arguments: false,
      supports_parallel_tool_calls: false,
      supports_preserve_reasoning: false,
      supports_reasoning_effort: false,
      supports_string_content: true,
      supports_system_role: true,
      supports_tool_calls: false,
      supports_tools: true,
      supports_typed_content: false,
    },
    bos_token: '<s>',
    eos_token: '</s>',
    build_info: BUILD_INFO,
    is_sleeping: false,
    cors_proxy_enabled: false,
  };
}

/** One entry of `/v1/models` `data` (get_v1_models.txt); also the loaded part of a router `/models` entry. */
export function modelDataEntry(inst: ModelInstance, created: number): Record<string, unknown> {
  const c = inst.config;
  return {
    id: inst.name,
    aliases: c.alias === undefined ? [] : [c.alias],
    tags: [],
    object: 'model',
    created,
    owned_by: 'llamacpp',
    meta: {
      vocab_type: true,
      n_vocab: Vocabulary.SIZE,
      n_ctx: c.nCtx,
      n_ctx_train: Math.max(32768, c.nCtx),
      n_embd: 512,
      n_params: Math.round(c.sizeBytes / 2),
      size: c.sizeBytes,
      ftype: c.ftype,
    },
  };
}

/** `GET /v1/models` and `GET /models` of a plain llama-server. */
export function modelsBody(inst: ModelInstance): Record<string, unknown> {
  const name = inst.name;
  return {
    models: [
      {
        name,
        model: name,
        modified_at: '',
        size: '',
        digest: '',
        type: 'model',
        description: '',
        tags: [''],
        capabilities: ['completion'],
        parameters: '',
        details: {
          parent_model: '',
          format: 'gguf',
          family: '',
          families: [''],
          parameter_size: '',
          quantization_level: '',
        },
      },
    ],
    object: 'list',
    data: [modelDataEntry(inst, Math.floor(Date.now() / 1000))],
  };
}

/** `GET /slots`: one entry per slot. */
export function slotsBody(inst: ModelInstance): Record<string, unknown>[] {
  return inst.slots.map((s) => s.toJson(inst.config.nCtx));
}
