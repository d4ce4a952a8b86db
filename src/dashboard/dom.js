// Building DOM nodes without HTML strings: every text from the server (keys, model names and URLs come from
// clients and configuration) becomes a text node or an attribute value, never markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    // No event-handler or URL attributes: nothing built here needs them, and none can then carry script.
    if (/^on|^href$|^src$/i.test(name)) throw new Error(`attribute ${name} is not allowed`);
    el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h('td', { class: 'num' }, 'text', otherNode). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, for the chart. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replace an element's children, only when what it should show changed (keeps a reader's text selection). */
export function show(el, signature, render) {
  if (el.dataset.signature === signature) return;
  el.dataset.signature = signature;
  el.replaceChildren(...[render()].flat(Infinity).filter(Boolean));
}
