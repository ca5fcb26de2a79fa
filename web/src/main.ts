document.getElementById('app')!.textContent = 'MominAI';
