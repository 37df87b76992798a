// A virtualised list: a scroller as tall as all rows, with only the rows in view (plus a margin) in the DOM, so a
// project of 100k items costs the same to show as one of 20. Rows have one fixed height.

const OVERSCAN = 10;

export class VirtualList {
  #scroller;
  #body;
  #rows = new Map(); // index → element in the DOM
  #count = 0;
  #selected = -1;

  /**
   * @param {HTMLElement} scroller a scrollable element with a fixed height
   * @param {{ rowHeight: number, renderRow: (el: HTMLElement, index: number) => void, onPick: (index: number) => void }} options
   */
  constructor(scroller, { rowHeight, renderRow, onPick }) {
    this.#scroller = scroller;
    this.rowHeight = rowHeight;
    this.renderRow = renderRow;
    this.#body = document.createElement('div');
    this.#body.className = 'vlist-body';
    scroller.replaceChildren(this.#body);
    scroller.addEventListener('scroll', () => this.#draw(), { passive: true });
    scroller.addEventListener('click', (event) => {
      const row = event.target.closest('[data-index]');
      if (row) onPick(Number(row.dataset.index));
    });
    new ResizeObserver(() => this.#draw()).observe(scroller);
  }

  /** Sets the number of rows and redraws every visible row. */
  reset(count) {
    this.#count = count;
    this.#body.style.height = `${count * this.rowHeight}px`;
    this.#rows.forEach((el) => el.remove());
    this.#rows.clear();
    this.#draw();
  }

  /** Redraws one row if it is in the DOM (its data changed). */
  refresh(index) {
    const el = this.#rows.get(index);
    if (el) this.#fill(el, index);
  }

  /** Redraws the rows in the DOM. */
  refreshAll() {
    this.#rows.forEach((el, index) => this.#fill(el, index));
  }

  /** Marks one row as the current item and scrolls it into view. */
  select(index) {
    const old = this.#selected;
    this.#selected = index;
    this.refresh(old);
    const top = index * this.rowHeight;
    const view = this.#scroller;
    if (top < view.scrollTop) view.scrollTop = top;
    else if (top + this.rowHeight > view.scrollTop + view.clientHeight) view.scrollTop = top + this.rowHeight - view.clientHeight;
    this.#draw();
    this.refresh(index);
  }

  #fill(el, index) {
    el.classList.toggle('selected', index === this.#selected);
    el.setAttribute('aria-selected', String(index === this.#selected));
    this.renderRow(el, index);
  }

  #draw() {
    const { scrollTop, clientHeight } = this.#scroller;
    const first = Math.max(0, Math.floor(scrollTop / this.rowHeight) - OVERSCAN);
    const last = Math.min(this.#count, Math.ceil((scrollTop + clientHeight) / this.rowHeight) + OVERSCAN);
    for (const [index, el] of this.#rows) {
      if (index < first || index >= last) {
        el.remove();
        this.#rows.delete(index);
      }
    }
    for (let index = first; index < last; index++) {
      if (this.#rows.has(index)) continue;
      const el = document.createElement('div');
      el.className = 'vlist-row';
      el.role = 'option';
      el.dataset.index = String(index);
      el.style.top = `${index * this.rowHeight}px`;
      el.style.height = `${this.rowHeight}px`;
      this.#fill(el, index);
      this.#body.append(el);
      this.#rows.set(index, el);
    }
  }
}
