// Light and dark: the page follows prefers-color-scheme ("auto") unless the toggle picked one; the choice is kept
// in localStorage. style.css reads it as html[data-theme] through color-scheme and light-dark().
const KEY = 'alignlab.theme';
const THEMES = ['auto', 'light', 'dark'];

export function initTheme(button) {
  const apply = (theme) => {
    document.documentElement.dataset.theme = theme;
    button.textContent = `theme: ${theme}`;
  };
  let theme = localStorage.getItem(KEY);
  if (!THEMES.includes(theme)) theme = 'auto';
  apply(theme);
  button.addEventListener('click', () => {
    theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
    localStorage.setItem(KEY, theme);
    apply(theme);
  });
}
